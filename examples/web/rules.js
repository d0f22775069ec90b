// Rules and observation encoders of Connect Four and the arena, for JavaScript clients of a
// selfplay brain (the browser game and the Node.js client). No dependencies; an ES module.
//
//   import { makeGame } from "./rules.js";
//   const game = makeGame(manifest);          // manifest = brain.json, parsed
//   let state = game.initialState();
//   const obs = game.encode(state);           // Float32Array(D), laid out as the manifest says
//   const mask = game.legalMask(state);       // Float32Array(A), 1 = legal
//   state = game.play(state, action);
//
// The encoders are driven by the manifest: each plane of `observation.planes` is built by the
// builder of that plane's *name*, written at that plane's *offset*. A brain whose game tag,
// shape or plane names this file does not know is refused with one line that says why, so a
// change to a game's encoding on the Python side cannot silently feed a brain wrong numbers
// (and tests/test_clients.py encodes many real positions here and with games' own encode).
//
// States mirror the Python games' so logs can be compared: Connect Four keeps a board and the
// moves; the arena keeps games/arena_rules.py's int64 layout [turn, cursor, hp[2N], cell[2N]].

export class BrainMismatch extends Error {}

// --------------------------------------------------------------------------- Connect Four
function connect4(manifest) {
  const { width = 7, height = 6 } = manifest.game.options || {};
  const W = width, H = height;
  const builders = {
    own_discs: (s, out, off) => discs(s, out, off, s.moves.length % 2),
    opponent_discs: (s, out, off) => discs(s, out, off, 1 - (s.moves.length % 2)),
  };
  function discs(s, out, off, player) {
    for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) if (s.board[r * W + c] === player + 1) out[off + r * W + c] = 1;
  }
  function fours(board, player) {
    const at = (r, c) => r >= 0 && r < H && c >= 0 && c < W && board[r * W + c] === player;
    for (let r = 0; r < H; r++)
      for (let c = 0; c < W; c++)
        for (const [dr, dc] of [[0, 1], [1, 0], [1, 1], [1, -1]])
          if (at(r, c) && at(r + dr, c + dc) && at(r + 2 * dr, c + 2 * dc) && at(r + 3 * dr, c + 3 * dc)) return true;
    return false;
  }
  const game = {
    name: "connect4", tag: "connect4_v1", shape: [2, H, W], numActions: W, width: W, height: H,
    builders,
    initialState: () => ({ board: new Int8Array(W * H), moves: [] }), // board[row*W+col], row 0 on top; 1 = X, 2 = O
    toPlay: (s) => s.moves.length % 2, // 0 = X (player_0), 1 = O
    winner(s) { // 0 or 1 when that player has four in a row, else -1
      for (const p of [0, 1]) if (fours(s.board, p + 1)) return p;
      return -1;
    },
    isTerminal: (s) => game.winner(s) >= 0 || s.moves.length === W * H,
    outcome(s, player) { const w = game.winner(s); return w < 0 ? 0 : w === player ? 1 : -1; },
    legalMask(s) {
      const mask = new Float32Array(W);
      if (!game.isTerminal(s)) for (let c = 0; c < W; c++) mask[c] = s.board[c] === 0 ? 1 : 0;
      return mask;
    },
    rowOf(s, col) { for (let r = H - 1; r >= 0; r--) if (s.board[r * W + col] === 0) return r; return -1; },
    play(s, col) {
      if (!game.legalMask(s)[col]) throw new Error(`connect4: column ${col + 1} is not a legal move`);
      const board = s.board.slice();
      board[game.rowOf(s, col) * W + col] = game.toPlay(s) + 1;
      return { board, moves: [...s.moves, col] };
    },
    describe: (s) => s.moves.map((m) => m + 1).join(" "),
  };
  return game;
}

// --------------------------------------------------------------------------- the arena
// games/arena_rules.py's constants, restated: unit kinds, maps, the start rule, the frame.
export const ARENA_KINDS = { F: { name: "fighter", hp: 10, damage: 3, range: 1 }, A: { name: "archer", hp: 6, damage: 2, range: 3 } };
export const ARENA_MAPS = {
  pillars: ["........", "........", ".#....#.", "...##...", "...##...", ".#....#.", "........", "........"],
  bridge: ["........", "........", "........", "###..###", "###..###", "........", "........", "........"],
  open: Array(8).fill("........"),
  small: ["......", "......", ".#..#.", ".#..#.", "......", "......"],
};
const HP_SCALE = 10, START_ROW = 1;
const DROW = [-1, 0, 1, 0], DCOL = [0, 1, 0, -1]; // forward, right, back, left in red's frame
export const ARENA_MOVES = ["wait", "forward", "right", "back", "left"];

function arena(manifest) {
  const opts = manifest.game.options || {};
  const lineup = String(opts.lineup ?? "FAF"), mapName = String(opts.map ?? "pillars"), limit = Number(opts.turn_limit ?? 60);
  const rows = ARENA_MAPS[mapName];
  if (!rows) throw new BrainMismatch(`arena map ${mapName} is unknown to this client (maps: ${Object.keys(ARENA_MAPS).join(", ")})`);
  for (const k of lineup) if (!ARENA_KINDS[k]) throw new BrainMismatch(`arena kind ${k} is unknown to this client`);
  const H = rows.length, W = rows[0].length, N = lineup.length, HP = 2, POS = 2 + 2 * N;
  const walls = rows.join("").split("").map((ch) => ch === "#");
  const kindOf = (i) => ARENA_KINDS[lineup[i % N]];
  const kindLetters = Object.keys(ARENA_KINDS);
  const first = Math.floor((W - 2 * N + 1) / 2);
  const red = Array.from({ length: N }, (_, k) => (H - 1 - START_ROW) * W + first + 2 * k);
  const start = [...red, ...red.map((cell) => H * W - 1 - cell)];
  const agentAt = (p) => (p & 1) * N + (p >> 1); // turn-order position -> agent
  const acting = (s) => agentAt(s[1]);
  const teamHp = (s, t) => { let x = 0; for (let i = t * N; i < t * N + N; i++) x += s[HP + i]; return x; };
  const dist = (a, b) => Math.abs(Math.floor(a / W) - Math.floor(b / W)) + Math.abs((a % W) - (b % W));
  function stepTarget(s, agent, direction) { // the cell a step in `direction` (its own frame) reaches, or -1
    const d = agent >= N ? (direction + 2) & 3 : direction;
    const cell = s[POS + agent], r = Math.floor(cell / W) + DROW[d], c = (cell % W) + DCOL[d];
    if (r < 0 || r >= H || c < 0 || c >= W || walls[r * W + c]) return -1;
    for (let i = 0; i < 2 * N; i++) if (s[POS + i] === r * W + c) return -1;
    return r * W + c;
  }
  // The viewer's frame: red sees the board as stored, blue turned by a half turn.
  const view = (cell, flip) => (flip ? H * W - 1 - cell : cell);
  function addReach(s, team, out, off, flip) {
    for (let i = team * N; i < team * N + N; i++) {
      if (s[HP + i] === 0) continue;
      const cell = s[POS + i], row = Math.floor(cell / W), col = cell % W, reach = kindOf(i).range, dmg = kindOf(i).damage / HP_SCALE;
      for (let r = Math.max(row - reach, 0); r <= Math.min(row + reach, H - 1); r++) {
        const spare = reach - Math.abs(r - row);
        for (let c = Math.max(col - spare, 0); c <= Math.min(col + spare, W - 1); c++) {
          if (r === row && c === col) continue;
          const at = off + view(r * W + c, flip);
          out[at] = Math.min(out[at] + dmg, 1.0); // Float32Array: rounds as numpy's float32 planes do
        }
      }
    }
  }
  // Each builder writes one plane (H*W features at `off`) for viewing agent v.
  const living = (s) => { // [agent, unit-turns until it acts] in turn order from the acting unit
    const out = [];
    for (let step = 0; step < 2 * N; step++) { const i = agentAt((s[1] + step) % (2 * N)); if (s[HP + i] > 0) out.push(i); }
    return out;
  };
  const builders = {
    walls: (s, v, out, off) => { for (let cell = 0; cell < H * W; cell++) if (walls[cell]) out[off + view(cell, v >= N)] = 1; },
    self: (s, v, out, off) => { if (s[HP + v] > 0) out[off + view(s[POS + v], v >= N)] = 1; },
    turn_order: (s, v, out, off) => living(s).forEach((i, order) => { out[off + view(s[POS + i], v >= N)] = (2 * N - order) / (2 * N); }),
    allies_hp: (s, v, out, off) => { for (const i of living(s)) if ((i >= N) === (v >= N)) out[off + view(s[POS + i], v >= N)] = s[HP + i] / HP_SCALE; },
    enemy_reach: (s, v, out, off) => addReach(s, v >= N ? 0 : 1, out, off, v >= N),
    ally_reach: (s, v, out, off) => addReach(s, v >= N ? 1 : 0, out, off, v >= N),
    turns_left: (s, v, out, off) => out.fill((limit - s[0]) / limit, off, off + H * W),
  };
  for (let k = 0; k < N; k++)
    builders[`enemy_${k}_hp`] = (s, v, out, off) => {
      const i = (v >= N ? 0 : N) + k;
      if (s[HP + i] > 0) out[off + view(s[POS + i], v >= N)] = s[HP + i] / HP_SCALE;
    };
  for (const letter of kindLetters)
    builders[`${ARENA_KINDS[letter].name}s`] = (s, v, out, off) => {
      for (const i of living(s)) if (lineup[i % N] === letter) out[off + view(s[POS + i], v >= N)] = 1;
    };

  const game = {
    name: "arena", tag: "arena_v1", shape: [9 + N, H, W], numActions: 5 + N, width: W, height: H,
    lineup, N, limit, walls, builders, kinds: ARENA_KINDS,
    initialState() {
      const s = new Array(2 + 4 * N).fill(0);
      for (let i = 0; i < 2 * N; i++) { s[HP + i] = kindOf(i).hp; s[POS + i] = start[i]; }
      return s;
    },
    acting, kindOf,
    agentName: (i) => `${i < N ? "red" : "blue"}_${i % N}`,
    toPlay: (s) => s[1] & 1, // the acting unit's team: 0 red, 1 blue
    teamHp,
    isTerminal: (s) => s[0] >= limit || teamHp(s, 0) === 0 || teamHp(s, 1) === 0,
    outcome(s, team) { const m = teamHp(s, team) - teamHp(s, 1 - team); return m > 0 ? 1 : m < 0 ? -1 : 0; },
    stepTarget,
    legalMask(s) {
      const mask = new Float32Array(5 + N);
      if (game.isTerminal(s)) return mask;
      const a = acting(s), enemies = a < N ? N : 0;
      mask[0] = 1;
      for (let d = 0; d < 4; d++) mask[1 + d] = stepTarget(s, a, d) >= 0 ? 1 : 0;
      for (let k = 0; k < N; k++) mask[5 + k] = s[HP + enemies + k] > 0 && dist(s[POS + a], s[POS + enemies + k]) <= kindOf(a).range ? 1 : 0;
      return mask;
    },
    play(s, action) {
      if (!game.legalMask(s)[action]) throw new Error(`arena: ${game.actionText(action)} is not legal for ${game.agentName(acting(s))}`);
      s = s.slice();
      const a = acting(s);
      if (action >= 1 && action <= 4) s[POS + a] = stepTarget(s, a, action - 1);
      else if (action >= 5) {
        const t = (a < N ? N : 0) + action - 5;
        s[HP + t] = Math.max(s[HP + t] - kindOf(a).damage, 0);
        if (s[HP + t] === 0) s[POS + t] = -1;
      }
      s[0] += 1;
      let p = s[1];
      for (let k = 0; k < 2 * N; k++) { p = p + 1 < 2 * N ? p + 1 : 0; if (s[HP + agentAt(p)] > 0) break; }
      s[1] = p;
      return s;
    },
    actionText: (action) => (action < 5 ? ARENA_MOVES[action] : `attack ${action - 5}`),
    cellOf: (s, i) => s[POS + i],
    hpOf: (s, i) => s[HP + i],
  };
  return game;
}

// --------------------------------------------------------------------------- from the manifest
const GAMES = { connect4, arena };

/** The game a brain plays, with its encoder built from the manifest's planes. Throws
 * BrainMismatch when this client does not know the game's version, shape or a plane. */
export function makeGame(manifest) {
  const info = manifest.game || {};
  const make = GAMES[info.name];
  if (!make) throw new BrainMismatch(`this client plays ${Object.keys(GAMES).join(" and ")}, not ${info.name}`);
  const game = make(manifest);
  if (info.tag !== game.tag) throw new BrainMismatch(`the brain is for ${info.tag}; this client knows ${game.tag}: update rules.js`);
  const obs = manifest.observation;
  if (JSON.stringify(obs.shape) !== JSON.stringify(game.shape))
    throw new BrainMismatch(`the brain's observation shape ${JSON.stringify(obs.shape)} is not ${JSON.stringify(game.shape)} for ${info.tag} ${JSON.stringify(info.options)}`);
  if (manifest.actions.count !== game.numActions) throw new BrainMismatch(`the brain has ${manifest.actions.count} actions; ${info.tag} has ${game.numActions}`);
  const [C, H, W] = obs.shape;
  const plan = obs.planes.map((p) => {
    const build = game.builders[p.name];
    if (!build) throw new BrainMismatch(`plane ${p.index} '${p.name}' of ${info.tag} is unknown to this client: update rules.js`);
    if (p.offset !== p.index * H * W) throw new BrainMismatch(`plane '${p.name}' has offset ${p.offset}, not ${p.index * H * W}`);
    return [build, p.offset];
  });
  if (plan.length !== C) throw new BrainMismatch(`the manifest lists ${plan.length} planes for shape ${JSON.stringify(obs.shape)}`);
  // Connect Four's builders see the state; the arena's also the viewing unit (the acting one).
  game.encode = (s) => {
    const out = new Float32Array(obs.size);
    const viewer = game.name === "arena" ? game.acting(s) : undefined;
    for (const [build, offset] of plan) game.name === "arena" ? build(s, viewer, out, offset) : build(s, out, offset);
    return out;
  };
  game.actionNames = manifest.actions.table.map((a) => a.text);
  return game;
}

/** The index of the largest value; ties go to the lowest index (as Python's Brain.act). */
export function argmax(values) {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

// --------------------------------------------------------------------------- random games
/** mulberry32: a small seeded generator, uniform in [0, 1). */
export function randomGenerator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A uniformly random legal action of `mask`. */
export function randomLegal(mask, random) {
  const legal = [];
  mask.forEach((m, a) => m > 0 && legal.push(a));
  return legal[Math.floor(random() * legal.length)];
}

/** `count` non-terminal positions of random games: { obs: [Float32Array], masks: [Float32Array] }. */
export function randomPositions(game, count, seed = 0) {
  const random = randomGenerator(seed), obs = [], masks = [];
  while (obs.length < count) {
    let s = game.initialState();
    while (!game.isTerminal(s) && obs.length < count) {
      const mask = game.legalMask(s);
      obs.push(game.encode(s));
      masks.push(mask);
      s = game.play(s, randomLegal(mask, random));
    }
  }
  return { obs, masks };
}
