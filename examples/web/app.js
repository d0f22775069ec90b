// The browser game: a person plays an exported brain (Connect Four or the arena) that runs in
// the page with onnxruntime-web (WebAssembly, CPU). The brain's directory comes from the URL:
//
//   http://127.0.0.1:8000/web/?brain=brains/connect4/           (relative to this page)
//   http://127.0.0.1:8000/web/?brain=brains/arena/&human=second  (the person moves second)
//   http://127.0.0.1:8000/web/?ladder=brains/arena_ladder/       (a difficulty ladder: a Level box)
//   http://127.0.0.1:8000/web/?ladder=brains/arena_ladder/&level=1
//
// A ladder (`selfplay pretrained make-ladder`, or `selfplay export` of a league ladder) opens at
// its start level, or at `level`; the Level box switches brains and starts a new game.
// Observations are built from the brain's manifest (rules.js); the brain plays the most probable
// legal move (its raw policy: a level's search visits apply in `selfplay play`, not here).
// `window.selfplay` exposes what tests need: the log of the brain's decisions (with the level
// that made each), the screen points of the person's legal moves, and a benchmark.
import * as ort from "../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";
import { benchBrain, ladderLevels, loadBrain } from "./brain.js";
import { argmax, randomPositions } from "./rules.js";

ort.env.wasm.numThreads = 1; // threads need a cross-origin-isolated page; one decision is tiny anyway

const params = new URLSearchParams(location.search);
const canvas = document.getElementById("board"), ctx = canvas.getContext("2d");
const $ = (id) => document.getElementById(id);

const C4 = { cell: 64, top: 36 }, AR = { cell: 52, pad: 4 }; // board geometry, pixels
const api = { ready: false, busy: false, error: null, log: [], games: 0, level: null };
window.selfplay = api;

let ladder = null; // {levels: [{level, elo, visits, label, url}], start} when the page plays a ladder

let brain, game, state, moves, humanSide = params.get("human") === "second" ? 1 : 0, lastProbs = null, lastMove = -1;

// ------------------------------------------------------------------ the game loop
function newGame() {
  state = game.initialState();
  moves = [];
  lastProbs = null;
  lastMove = -1;
  draw();
  brainTurn();
}

function humanToMove() {
  return !game.isTerminal(state) && game.toPlay(state) === humanSide;
}

function play(action) {
  state = game.play(state, action);
  moves.push(action);
  if (game.isTerminal(state)) api.games += 1;
}

async function brainTurn() {
  api.busy = true;
  try {
    while (!game.isTerminal(state) && game.toPlay(state) !== humanSide) {
      draw();
      const mask = game.legalMask(state);
      const { probs, value } = await brain.evaluate(game.encode(state), mask);
      const move = argmax(probs);
      api.log.push({ game: api.games, level: api.level, moves: [...moves], probs: Array.from(probs), value, move });
      lastProbs = Array.from(probs);
      lastMove = move;
      play(move);
    }
  } finally {
    api.busy = false;
    draw();
  }
}

function onClick(x, y) {
  if (api.busy || !humanToMove()) return;
  const hit = targets().find((t) => Math.abs(t.x - x) <= t.r && Math.abs(t.y - y) <= (t.ry ?? t.r));
  if (!hit) return;
  play(hit.action);
  brainTurn();
}

// ------------------------------------------------------------------ geometry and drawing
function layout() {
  if (game.name === "arena") { canvas.width = game.width * AR.cell + 2 * AR.pad; canvas.height = game.height * AR.cell + 2 * AR.pad; }
  else { canvas.width = game.width * C4.cell; canvas.height = game.height * C4.cell + C4.top; }
}

const cellCentre = (cell) => ({ x: AR.pad + (cell % game.width + 0.5) * AR.cell, y: AR.pad + (Math.floor(cell / game.width) + 0.5) * AR.cell });

/** The person's legal moves now, as canvas points: [{action, x, y, r, ry}] (half the hit box's width and height). */
function targets() {
  if (!humanToMove()) return [];
  const mask = game.legalMask(state), out = [];
  mask.forEach((legal, action) => {
    if (!legal) return;
    if (game.name === "connect4") out.push({ action, x: (action + 0.5) * C4.cell, y: C4.top + game.height * C4.cell / 2, r: C4.cell / 2 - 2, ry: canvas.height / 2 });
    else {
      const me = game.acting(state);
      let cell = game.cellOf(state, me);
      if (action >= 1 && action <= 4) cell = game.stepTarget(state, me, action - 1);
      if (action >= 5) cell = game.cellOf(state, (me < game.N ? game.N : 0) + action - 5);
      out.push({ action, ...cellCentre(cell), r: AR.cell / 2 - 2 });
    }
  });
  return out;
}

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (game.name === "connect4") drawConnect4(); else drawArena();
  $("status").textContent = statusText();
  drawProbs();
}

function statusText() {
  if (game.isTerminal(state)) {
    const r = game.outcome(state, humanSide);
    return r > 0 ? "You win!" : r < 0 ? "The brain wins." : "A draw.";
  }
  if (game.name === "arena") {
    const who = game.agentName(game.acting(state));
    return `Turn ${state[0] + 1}/${game.limit}, HP red ${game.teamHp(state, 0)} blue ${game.teamHp(state, 1)}: ${humanToMove() ? `your ${who}` : `brain's ${who}`} to move`;
  }
  return humanToMove() ? `Your move (${humanSide === 0 ? "red, first" : "yellow, second"}).` : "The brain is thinking...";
}

function drawConnect4() {
  const { cell, top } = C4;
  ctx.fillStyle = "#2851a8";
  ctx.fillRect(0, top, game.width * cell, game.height * cell);
  const colours = ["#fff", "#d23c34", "#f0c419"];
  for (let r = 0; r < game.height; r++)
    for (let c = 0; c < game.width; c++) {
      ctx.beginPath();
      ctx.arc((c + 0.5) * cell, top + (r + 0.5) * cell, cell * 0.4, 0, 2 * Math.PI);
      ctx.fillStyle = colours[state.board[r * game.width + c]];
      ctx.fill();
    }
  if (moves.length) { // mark the last disc
    const c = moves[moves.length - 1], r = game.rowOf(state, c) + 1;
    ctx.beginPath();
    ctx.arc((c + 0.5) * cell, top + (r + 0.5) * cell, cell * 0.12, 0, 2 * Math.PI);
    ctx.fillStyle = "#0006";
    ctx.fill();
  }
  ctx.fillStyle = "#333";
  ctx.font = "14px system-ui";
  ctx.textAlign = "center";
  for (let c = 0; c < game.width; c++) ctx.fillText(game.actionNames[c], (c + 0.5) * cell, 22);
}

function drawArena() {
  const { cell, pad } = AR, N = game.N;
  for (let i = 0; i < game.width * game.height; i++) {
    const x = pad + (i % game.width) * cell, y = pad + Math.floor(i / game.width) * cell;
    ctx.fillStyle = game.walls[i] ? "#56504a" : "#e2dac4";
    ctx.fillRect(x, y, cell - 1, cell - 1);
  }
  const me = game.isTerminal(state) ? -1 : game.acting(state);
  for (const t of targets()) {
    const isEnemy = t.action >= 5;
    if (t.action === 0) continue;
    ctx.beginPath();
    ctx.arc(t.x, t.y, cell * 0.44, 0, 2 * Math.PI);
    ctx.strokeStyle = isEnemy ? "#d01010" : "#2a9a3a";
    ctx.lineWidth = 4;
    if (!isEnemy) { ctx.fillStyle = "#2a9a3a33"; ctx.fill(); }
    ctx.stroke();
  }
  for (let i = 0; i < 2 * N; i++) {
    const hp = game.hpOf(state, i);
    if (hp <= 0) continue;
    const { x, y } = cellCentre(game.cellOf(state, i)), kind = game.kindOf(i);
    if (i === me) { ctx.beginPath(); ctx.arc(x, y, cell * 0.48, 0, 2 * Math.PI); ctx.fillStyle = "#ffd60088"; ctx.fill(); }
    ctx.beginPath();
    ctx.arc(x, y, cell * 0.34, 0, 2 * Math.PI);
    ctx.fillStyle = i < N ? "#ce3a34" : "#2e60ce";
    ctx.fill();
    ctx.fillStyle = "#fff";
    ctx.font = "bold 16px system-ui";
    ctx.textAlign = "center";
    ctx.fillText(`${game.lineup[i % N]}${i % N}`, x, y + 6);
    ctx.fillStyle = "#0008";
    ctx.fillRect(x - cell * 0.38, y + cell * 0.36, cell * 0.76, 5);
    ctx.fillStyle = "#3c3";
    ctx.fillRect(x - cell * 0.38, y + cell * 0.36, cell * 0.76 * hp / kind.hp, 5);
  }
}

function drawProbs() {
  const box = $("probs");
  box.innerHTML = lastProbs ? "<div class='small'>the brain's last move, probabilities:</div>" : "";
  (lastProbs || []).forEach((p, a) => {
    const row = document.createElement("div");
    row.innerHTML = `<span class="name">${game.actionNames[a]}</span><span class="bar${a === lastMove ? " chosen" : ""}" style="width:${Math.max(1, 150 * p)}px"></span><span>${(100 * p).toFixed(1)}%</span>`;
    box.appendChild(row);
  });
}

// ------------------------------------------------------------------ for tests and benchmarks
Object.assign(api, {
  humanToMove,
  isOver: () => game.isTerminal(state),
  /** The person's legal moves as page coordinates, to click. */
  targets: () => {
    const r = canvas.getBoundingClientRect();
    return targets().map((t) => ({ action: t.action, x: r.left + t.x, y: r.top + t.y }));
  },
  newGame,
  bench: (seconds = 2) => benchBrain(brain, randomPositions(game, 1024, 0), seconds),
});

// ------------------------------------------------------------------ loading brains and levels
/** A function reading a file of the directory at `base` as bytes (what loadBrain takes). */
function fetchFrom(base) {
  return (name) => fetch(new URL(name, base)).then((r) => {
    if (!r.ok) throw new Error(`${new URL(name, base)}: HTTP ${r.status} (export a brain there: see docs/export.md)`);
    return r.arrayBuffer();
  });
}

function describe() {
  const m = brain.manifest, level = ladder?.levels[api.level - 1];
  $("title").textContent = `${m.game.name === "arena" ? "Arena" : "Connect Four"} against a selfplay brain`;
  const elo = level ? (level.elo != null ? `, Elo ${Math.round(level.elo)} in its ladder` : "")
    : m.strength?.elo != null ? `, Elo ${Math.round(m.strength.elo)}` : "";
  $("about").textContent = `${level ? `level ${level.level} of ${ladder.levels.length}: ` : ""}${m.name} (${m.game.tag}, ${m.network.parameters ?? "?"} parameters${elo}), onnxruntime-web ${ort.env.versions?.web ?? ""} wasm`;
  if (level) $("level-note").textContent = level.visits ? `Its raw policy here; selfplay play searches ${level.visits} visits a move at this level.` : "";
}

/** Play ladder level `k` from now: its brain, a new game. Waits for a brain move in progress. */
async function setLevel(k) {
  const level = ladder.levels[k - 1];
  api.ready = false;
  while (api.busy) await new Promise((done) => setTimeout(done, 10)); // a brain move ends within milliseconds
  const next = await loadBrain(ort, fetchFrom(level.url), { providers: ["wasm"] });
  if (next.game.name !== game.name) throw new Error(`level ${k} plays ${next.game.name}, not ${game.name}`);
  brain = next;
  game = brain.game;
  api.level = k;
  $("level").value = String(k);
  describe();
  newGame();
  api.ready = true;
}

// ------------------------------------------------------------------ start (after every definition above)
try {
  let brainUrl = new URL(params.get("brain") || "brains/connect4/", location.href);
  if (params.get("ladder")) {
    const ladderUrl = new URL(params.get("ladder"), location.href);
    const index = JSON.parse(new TextDecoder().decode(await fetchFrom(ladderUrl)("ladder.json")));
    ladder = ladderLevels(index, ladderUrl, params.get("level"));
    for (const level of ladder.levels) $("level").add(new Option(level.label, String(level.level)));
    $("levels").hidden = false;
    api.level = ladder.start;
    $("level").value = String(ladder.start);
    brainUrl = new URL(ladder.levels[ladder.start - 1].url);
  }
  brain = await loadBrain(ort, fetchFrom(brainUrl), { providers: ["wasm"] });
  game = brain.game;
  describe();
  $("help").textContent = game.name === "arena"
    ? "You lead the units of your colour. Click a green cell to step, an enemy in a red ring to attack it, your glowing unit to wait."
    : "Click a column to drop a disc.";
  layout();
  newGame();
  api.ready = true;
} catch (e) {
  api.error = String(e);
  $("status").textContent = `Cannot load the brain: ${e.message ?? e}`;
  throw e;
}

$("new").onclick = () => newGame();
$("level").onchange = (e) => setLevel(Number(e.target.value)).catch((err) => { api.error = String(err); $("status").textContent = `Cannot load that level: ${err.message ?? err}`; });
$("swap").onclick = () => { humanSide = 1 - humanSide; newGame(); };
canvas.addEventListener("click", (e) => {
  const r = canvas.getBoundingClientRect();
  onClick(e.clientX - r.left, e.clientY - r.top);
});
