// A selfplay brain (brain.onnx + brain.json) in JavaScript: the same code runs in the browser
// with onnxruntime-web and in Node.js with onnxruntime-node. The caller passes its `ort` module
// and a function that reads a file of the brain directory as bytes.
//
//   const brain = await loadBrain(ort, (name) => fetch(`brains/connect4/${name}`).then(r => r.arrayBuffer()));
//   const { probs, value } = await brain.evaluate(game.encode(state), game.legalMask(state));
//
// It checks what docs/export.md promises before playing: the manifest's format, the model's
// SHA-256, and the input and output names. `ladderLevels` reads a difficulty ladder's index
// (ladder.json, as `selfplay pretrained make-ladder` ships it): where each level's brain is.
import { BrainMismatch, makeGame } from "./rules.js";

export async function sha256Hex(bytes) {
  const digest = await globalThis.crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function loadBrain(ort, readFile, options = {}) {
  const manifest = JSON.parse(new TextDecoder().decode(await readFile("brain.json")));
  if (manifest.format !== "selfplay-brain" || manifest.format_version !== 1)
    throw new BrainMismatch(`not a version 1 selfplay brain manifest (format ${manifest.format} ${manifest.format_version})`);
  if (manifest.kind !== "brain") throw new BrainMismatch(`a ${manifest.kind} model: load brain.json, the plain brain`);
  const model = new Uint8Array(await readFile(manifest.model_file));
  if ((await sha256Hex(model)) !== manifest.sha256) throw new BrainMismatch(`${manifest.model_file}: its sha256 is not the manifest's`);
  const game = makeGame(manifest);
  const session = await ort.InferenceSession.create(model, { executionProviders: options.providers || ["cpu"], ...(options.session || {}) });
  const want = manifest.inputs.map((t) => t.name).join(",") + " -> " + manifest.outputs.map((t) => t.name).join(",");
  const have = session.inputNames.join(",") + " -> " + session.outputNames.join(",");
  if (want !== have) throw new BrainMismatch(`the model's tensors (${have}) are not the manifest's (${want})`);
  const D = manifest.observation.size, A = manifest.actions.count;

  /** probs Float32Array(A) (or [N*A] for a batch) and value (a number, or null) for one
   * observation Float32Array(D) and mask Float32Array(A), or N of them concatenated. */
  async function evaluate(obs, mask) {
    const n = obs.length / D;
    if (!Number.isInteger(n) || mask.length !== n * A) throw new Error(`evaluate: obs [${obs.length}] and mask [${mask.length}] are not N*${D} and N*${A}`);
    const out = await session.run({ obs: new ort.Tensor("float32", obs, [n, D]), action_mask: new ort.Tensor("float32", mask, [n, A]) });
    const value = out.value ? (n === 1 ? out.value.data[0] : out.value.data) : null;
    return { probs: out.probs.data, logits: out.logits.data, value };
  }
  return { manifest, game, session, evaluate, obsSize: D, numActions: A };
}

/** Per-call times of brain.evaluate (session.run and its tensors) over `seconds` for each batch
 * size, after a warm-up, cycling through `positions` ({obs, masks}: arrays of Float32Array): {B: {median_ms, p90_ms, positions_per_s, calls}}. */
export async function benchBrain(brain, positions, seconds, batches = [1, 64]) {
  const out = {};
  for (const batch of batches) {
    const chunks = [];
    for (let s = 0; s + batch <= positions.obs.length; s += batch) {
      const obs = new Float32Array(batch * brain.obsSize), mask = new Float32Array(batch * brain.numActions);
      for (let i = 0; i < batch; i++) { obs.set(positions.obs[s + i], i * brain.obsSize); mask.set(positions.masks[s + i], i * brain.numActions); }
      chunks.push([obs, mask]);
    }
    for (const [obs, mask] of chunks.slice(0, 20)) await brain.evaluate(obs, mask);
    // Calls are timed in groups of `group` and each group's mean kept: a page that is not
    // cross-origin isolated sees performance.now() in steps of 0.1 ms, longer than one call.
    const group = batch === 1 ? 20 : 1, times = [], deadline = performance.now() + seconds * 1000;
    let k = 0;
    while (performance.now() < deadline || times.length < 50) {
      const start = performance.now();
      for (let j = 0; j < group; j++, k++) { const [obs, mask] = chunks[k % chunks.length]; await brain.evaluate(obs, mask); }
      times.push((performance.now() - start) / group);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)], p90 = times[Math.floor(times.length * 0.9)];
    out[batch] = { median_ms: +median.toFixed(4), p90_ms: +p90.toFixed(4), positions_per_s: Math.round((batch / median) * 1000), calls: times.length * group };
  }
  return out;
}

/** A difficulty ladder's levels from its index (ladder.json, parsed) at `ladderUrl` (a URL of
 * the ladder's directory): {levels: [{level, elo, visits, label, url}], start}, weakest first,
 * `url` the level's brain directory; `start` is `wanted` (a level number, or null for the
 * ladder's start_level, else 1). Throws BrainMismatch on an index that is not a ladder's. */
export function ladderLevels(index, ladderUrl, wanted = null) {
  const entries = index && Array.isArray(index.levels) ? index.levels : [];
  if (!entries.length || entries.some((e, k) => e.level !== k + 1 || typeof e.checkpoint !== "string"))
    throw new BrainMismatch("ladder.json: not a ladder index (levels 1..N, each with its brain's checkpoint)");
  const levels = entries.map((e) => {
    const dir = e.checkpoint.includes("/") ? e.checkpoint.slice(0, e.checkpoint.lastIndexOf("/") + 1) : "./";
    const elo = typeof e.elo === "number" ? `, Elo ${Math.round(e.elo)}` : "";
    const visits = typeof e.visits === "number" ? e.visits : index.visits;
    return { level: e.level, elo: e.elo ?? null, visits: visits ?? null, label: `Level ${e.level}${elo}`, url: new URL(dir, ladderUrl).href };
  });
  const start = Number(wanted ?? index.start_level ?? 1);
  if (!Number.isInteger(start) || start < 1 || start > levels.length)
    throw new BrainMismatch(`level ${wanted ?? index.start_level}: the ladder has levels 1..${levels.length}`);
  return { levels, start };
}
