// Shared by the Node.js tools: load a brain directory from disk, read flags.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { loadBrain } from "../web/brain.js";

export { ort };
export { randomGenerator, randomLegal, randomPositions } from "../web/rules.js";

/** The brain in `dir` (brain.json and brain.onnx), on onnxruntime-node's CPU provider. */
export function loadBrainDir(dir, threads = 1) {
  return loadBrain(ort, (name) => readFile(join(dir, name)), { session: { intraOpNumThreads: threads, interOpNumThreads: 1 } });
}

/** Arguments `--name value` after the positional ones, as { name: value }. */
export function parseArgs(argv, defaults) {
  const positional = [], flags = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith("--")) flags[argv[i].slice(2)] = i + 1 < argv.length && !argv[i + 1].startsWith("--") ? argv[++i] : "true";
    else positional.push(argv[i]);
  }
  return { positional, flags };
}
