#!/usr/bin/env node
// For tests: reads {"lines": [[action, ...], ...]} (games from the start) as JSON on stdin,
// plays each line with ../web/rules.js for the brain in BRAIN_DIR's manifest, and writes
// {"obs": [[...D]], "masks": [[...A]], "terminal": [bool]} for the position after each line.
// tests/test_clients.py compares them with games' own encode and legal_mask.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { makeGame } from "../web/rules.js";

const manifest = JSON.parse(readFileSync(join(process.argv[2], "brain.json"), "utf8"));
const game = makeGame(manifest);
const { lines } = JSON.parse(readFileSync(0, "utf8"));
const out = { obs: [], masks: [], terminal: [] };
for (const line of lines) {
  let s = game.initialState();
  for (const a of line) s = game.play(s, a);
  out.obs.push(Array.from(game.encode(s)));
  out.masks.push(Array.from(game.legalMask(s)));
  out.terminal.push(game.isTerminal(s));
}
process.stdout.write(JSON.stringify(out));
