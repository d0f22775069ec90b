// UNTESTED HERE (no Unity on these machines). An arena unit driven by SelfplayBrain: builds the
// observation planes of docs/arena.md from your own game objects, by plane name from the manifest.
// Your game supplies IArenaWorld (its board, units, turn); the planes mirror
// examples/pygame_arena/arena_npc.py's Encoder, which the tests check against the real game.
using UnityEngine;

public interface IArenaWorld
{
    int Height { get; }
    int Width { get; }
    int UnitsPerTeam { get; }          // N, the lineup's length
    int Turn { get; }                  // unit-turns played
    int TurnLimit { get; }
    bool IsWall(int row, int col);     // row 0 on top, as stored
    bool Alive(int agent);             // agent = team * N + slot; red is team 0
    int Row(int agent); int Col(int agent);
    int Hp(int agent);
    bool IsFighter(int agent);         // else an archer
    int Damage(int agent); int Range(int agent);
    int TurnsUntilActs(int agent);     // 0 for the acting unit, counting living units only
    float[] LegalMask(int agent);      // 1 = legal, in the order wait, forward, right, back, left, attack 0..N-1
}

public class ArenaNpc : MonoBehaviour
{
    public SelfplayBrain brain;
    const float HpScale = 10f;

    public int ChooseAction(IArenaWorld w, int agent, out string actionText)
    {
        float[] obs = new float[brain.Manifest.observation.size];
        int n = w.UnitsPerTeam, team = agent >= n ? 1 : 0;
        bool flip = team == 1; // blue sees the board turned by a half turn
        void Set(string plane, int r, int c, float v)
        {
            if (flip) { r = w.Height - 1 - r; c = w.Width - 1 - c; }
            obs[brain.Feature(plane, r, c)] = v;
        }
        float Get(string plane, int r, int c)
        {
            if (flip) { r = w.Height - 1 - r; c = w.Width - 1 - c; }
            return obs[brain.Feature(plane, r, c)];
        }
        for (int r = 0; r < w.Height; r++)
            for (int c = 0; c < w.Width; c++)
            {
                if (w.IsWall(r, c)) Set("walls", r, c, 1f);
                Set("turns_left", r, c, (w.TurnLimit - w.Turn) / (float)w.TurnLimit);
            }
        for (int i = 0; i < 2 * n; i++)
        {
            if (!w.Alive(i)) continue;
            int r = w.Row(i), c = w.Col(i);
            if (i == agent) Set("self", r, c, 1f);
            Set("turn_order", r, c, (2 * n - w.TurnsUntilActs(i)) / (float)(2 * n));
            if ((i >= n) == (team == 1)) Set("allies_hp", r, c, w.Hp(i) / HpScale);
            else Set($"enemy_{i % n}_hp", r, c, w.Hp(i) / HpScale);
            Set(w.IsFighter(i) ? "fighters" : "archers", r, c, 1f);
            string reach = (i >= n) == (team == 1) ? "ally_reach" : "enemy_reach";
            for (int rr = Mathf.Max(r - w.Range(i), 0); rr <= Mathf.Min(r + w.Range(i), w.Height - 1); rr++)
            {
                int spare = w.Range(i) - Mathf.Abs(rr - r);
                for (int cc = Mathf.Max(c - spare, 0); cc <= Mathf.Min(c + spare, w.Width - 1); cc++)
                    if (rr != r || cc != c) Set(reach, rr, cc, Mathf.Min(Get(reach, rr, cc) + w.Damage(i) / HpScale, 1f));
            }
        }
        return brain.Decide(obs, w.LegalMask(agent), out actionText);
    }
}
