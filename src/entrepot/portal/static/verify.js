// Checking the log in the browser, trusting nothing the server computed: SHA-256 and
// Ed25519 come from WebCrypto; the walk up the Merkle tree follows RFC 9162 2.1.3.2.
import { csrfToken, el } from "./portal.js";

const KEY_STORE = "entrepot.node-key";
const keyInput = document.getElementById("node-key");

const hexToBytes = (hex) => {
  if (typeof hex !== "string" || !/^([0-9a-f]{2})*$/.test(hex)) throw new Error("not lowercase hex");
  return Uint8Array.from(hex.match(/../g) || [], (pair) => parseInt(pair, 16));
};
const bytesToHex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
};
const sha256 = async (bytes) => new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
const leafHash = (entry) => sha256(concat(Uint8Array.of(0), new TextEncoder().encode(entry)));
const nodeHash = (left, right) => sha256(concat(Uint8Array.of(1), left, right));

/** The root an inclusion proof leads to (RFC 9162 section 2.1.3.2), or an Error. */
async function rootFromInclusion(index, size, leaf, path) {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size)) {
    throw new Error(`entry ${index} is not in a tree of ${size}`);
  }
  let fn = index, sn = size - 1, r = leaf;
  for (const hex of path) {
    const p = hexToBytes(hex);
    if (p.length !== 32) throw new Error("a proof hash is not 32 bytes");
    if (sn === 0) throw new Error("the proof is too long");
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new Error("the proof is too short");
  return r;
}

/** Canonical JSON as the node signs it: sorted keys, no spaces, integers, UTF-8. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  if (typeof value === "number" && !Number.isSafeInteger(value)) throw new Error("a number is not an integer");
  return JSON.stringify(value);
}

async function verifySignature(keyHex, signatureHex, message) {
  const key = await crypto.subtle.importKey("raw", hexToBytes(keyHex), { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, hexToBytes(signatureHex), new TextEncoder().encode(message));
}

function trustedKey() {
  const key = keyInput.value.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(key)) throw new Error("give the node's public key: 64 hex digits");
  localStorage.setItem(KEY_STORE, key);
  return key;
}

/** Check a signed head against the trusted key; throws naming what failed. */
async function checkHead(head, key) {
  if (head.format !== "entrepot.head/1") throw new Error("the head has another format");
  if (head.key !== key) throw new Error("the head is signed by another key than the one you trust");
  const body = { format: head.format, key: head.key, root: head.root, size: head.size, time: head.time };
  if (!(await verifySignature(key, head.signature, canonical(body)))) {
    throw new Error("the head's signature does not verify");
  }
}

/** Check that `entry` (its exact text) is entry `index` of the tree `head` signs. */
async function checkInclusion(entry, index, path, head, key) {
  await checkHead(head, key);
  const root = await rootFromInclusion(index, head.size, await leafHash(entry), path);
  if (bytesToHex(root) !== head.root) throw new Error("the proof does not lead to the signed root");
}

function say(box, ok, text) {
  box.replaceChildren(el("span", { class: ok ? "verified" : "failed" }, `${ok ? "✓ verified" : "✗ failed"}: ${text}`));
}

async function verifyEntry(button) {
  const index = Number(button.dataset.index);
  const box = document.getElementById(`proof-${index}`);
  box.replaceChildren("checking…");
  try {
    const key = trustedKey();
    const response = await fetch(`/portal/audit/proof/${index}`, {
      credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken() },
    });
    const proof = await response.json();
    if (!response.ok) throw new Error(proof.error.message);
    if (proof.index !== index || !proof.head) throw new Error("the server sent a proof of another entry");
    await checkInclusion(proof.entry, index, proof.inclusion, proof.head, key);
    say(box, true, `entry #${index} is in the log of ${proof.head.size} entries signed at ${proof.head.time}`);
  } catch (error) {
    say(box, false, error.message);
  }
}

async function verifyReceipt(file) {
  const box = document.getElementById("receipt-result");
  box.replaceChildren("checking…");
  try {
    const key = trustedKey();
    const receipt = JSON.parse(await file.text());
    if (receipt.format !== "entrepot.receipt/2") throw new Error("this is not an entrepot receipt");
    if (receipt.node_key !== key) throw new Error("the receipt names another node key than the one you trust");
    const log = receipt.log;
    await checkInclusion(log.entry, log.index, log.inclusion, log.head, key);
    const signed = { format: receipt.format, node_key: receipt.node_key, statement: receipt.statement, log };
    if (!(await verifySignature(key, receipt.signature, canonical(signed)))) {
      throw new Error("the receipt's signature does not verify");
    }
    const entry = JSON.parse(log.entry);
    for (const name of ["query_commitment", "answer_commitment", "epsilon", "kind", "time"]) {
      if (entry[name] !== receipt.statement[name]) throw new Error(`the log entry does not record the receipt's ${name}`);
    }
    say(box, true, `a ${entry.kind} by ${entry.actor} spending ε ${entry.epsilon}, entry #${log.index} of the signed log`);
  } catch (error) {
    say(box, false, error.message);
  }
}

keyInput.value = localStorage.getItem(KEY_STORE) || keyInput.value;
for (const button of document.querySelectorAll("button.verify")) {
  button.addEventListener("click", () => verifyEntry(button));
}
document.getElementById("verify-head").addEventListener("click", async () => {
  const box = document.getElementById("head-result");
  const holder = document.getElementById("head");
  try {
    if (!holder) throw new Error("no head is signed yet");
    const head = JSON.parse(holder.dataset.head);
    await checkHead(head, trustedKey());
    say(box, true, `${head.size} entries, root ${head.root.slice(0, 16)}…, signed by the key you trust`);
  } catch (error) {
    say(box, false, error.message);
  }
});
document.getElementById("receipt-file").addEventListener("change", (event) => {
  const [file] = event.target.files;
  if (file) verifyReceipt(file);
});
const focused = document.querySelector(".entry.focus");
if (focused) focused.scrollIntoView({ block: "center" });
