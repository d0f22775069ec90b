#!/usr/bin/env node
// A Node.js client of a selfplay brain: loads brain.json and brain.onnx with onnxruntime-node,
// builds each observation from the manifest (../web/rules.js) and plays games against a random
// mover. The brain plays the first side (X, or red's units) in even games and the second in odd.
//
//   node examples/node/client.mjs BRAIN_DIR [--games 2] [--seed 0] [--log decisions.json]
//
// --log writes every brain decision as {game, moves, probs, value, move}: `moves` are the
// actions played before it from the start, so any other implementation (tests/test_clients.py
// uses Python's Brain) can rebuild the position and compare.
import { writeFile } from "node:fs/promises";
import { argmax } from "../web/rules.js";
import { loadBrainDir, parseArgs, randomGenerator, randomLegal } from "./common.mjs";

const { positional, flags } = parseArgs(process.argv.slice(2), { games: "2", seed: "0" });
if (positional.length !== 1) {
  console.error("usage: node client.mjs BRAIN_DIR [--games N] [--seed S] [--log FILE]");
  process.exit(2);
}
const brain = await loadBrainDir(positional[0]);
const { game, manifest } = brain;
const random = randomGenerator(Number(flags.seed));
const decisions = [], score = { win: 0, draw: 0, loss: 0 };
console.log(`${manifest.name}: ${manifest.game.tag} ${JSON.stringify(manifest.game.options)}, onnxruntime-node`);
for (let g = 0; g < Number(flags.games); g++) {
  const brainSide = g % 2;
  let s = game.initialState();
  const moves = [];
  while (!game.isTerminal(s)) {
    const mask = game.legalMask(s);
    let move;
    if (game.toPlay(s) === brainSide) {
      const { probs, value } = await brain.evaluate(game.encode(s), mask);
      move = argmax(probs);
      decisions.push({ game: g, moves: [...moves], probs: Array.from(probs), value, move });
    } else move = randomLegal(mask, random);
    s = game.play(s, move);
    moves.push(move);
  }
  const result = game.outcome(s, brainSide);
  score[result > 0 ? "win" : result < 0 ? "loss" : "draw"]++;
  console.log(`game ${g}: brain as side ${brainSide}, ${moves.length} moves, ${result > 0 ? "brain wins" : result < 0 ? "random wins" : "draw"}`);
}
console.log(`brain vs random: ${score.win} won, ${score.draw} drawn, ${score.loss} lost; ${decisions.length} decisions`);
if (flags.log) await writeFile(flags.log, JSON.stringify({ brain: manifest.name, tag: manifest.game.tag, decisions }));
