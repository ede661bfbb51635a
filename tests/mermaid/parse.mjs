// Parse Mermaid files with the real Mermaid library, without a browser.
//
//   node parse.mjs FILE...
//
// Prints one JSON object per file and line:
//   {"file", "ok": true, "type", "nodes", "edges", "subgraphs": [[id, title, size]...]}
//   {"file", "ok": false, "error"}
// and exits 1 when any file fails to parse, 2 on a usage error.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node parse.mjs FILE...");
  process.exit(2);
}

// Mermaid sanitises labels with DOMPurify, which needs a window and document.
const { window } = new JSDOM("<!DOCTYPE html><body></body>");
globalThis.window = window;
globalThis.document = window.document;

const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });

function summary(diagram) {
  const db = diagram.db;
  const out = { type: diagram.type };
  if (typeof db.getVertices === "function") {
    const vertices = db.getVertices();
    out.nodes = vertices instanceof Map ? vertices.size : Object.keys(vertices).length;
    out.edges = db.getEdges().length;
    out.subgraphs = db.getSubGraphs().map((s) => [s.id, s.title, s.nodes.length]);
  }
  return out;
}

let failed = 0;
for (const file of files) {
  const text = readFileSync(file, "utf8");
  try {
    await mermaid.parse(text); // throws on a syntax error
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    console.log(JSON.stringify({ file, ok: true, ...summary(diagram) }));
  } catch (err) {
    failed += 1;
    const error = String(err?.message ?? err).split("\n").join(" | ");
    console.log(JSON.stringify({ file, ok: false, error }));
  }
}
process.exit(failed ? 1 : 0);
