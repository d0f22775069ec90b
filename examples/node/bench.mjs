#!/usr/bin/env node
// How fast a brain runs in Node.js (onnxruntime-node, CPU, one thread): the median time of one
// session.run at batch 1 (one NPC decision) and batch 64, on real positions of random games.
//
//   node examples/node/bench.mjs BRAIN_DIR [--seconds 2] [--json]
import { benchBrain } from "../web/brain.js";
import { loadBrainDir, parseArgs, randomPositions } from "./common.mjs";

const { positional, flags } = parseArgs(process.argv.slice(2), { seconds: "2" });
const brain = await loadBrainDir(positional[0]);
const results = await benchBrain(brain, randomPositions(brain.game, 1024, 0), Number(flags.seconds));
if ("json" in flags) console.log(JSON.stringify({ runtime: "onnxruntime-node", tag: brain.manifest.game.tag, batches: results }));
else for (const [b, r] of Object.entries(results)) console.log(`batch ${b}: median ${r.median_ms} ms, p90 ${r.p90_ms} ms, ${r.positions_per_s} positions/s`);
