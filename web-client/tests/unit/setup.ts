// IndexedDB for the unit tests (happy-dom has none).
import "fake-indexeddb/auto";

// DOMPurify reads names through Node.prototype's own `nodeName` getter, as browsers
// implement it; happy-dom's returns "" there (its subclasses override it), which would
// make DOMPurify drop every element.  Give the base getter the browsers' behaviour.
const NODE_NAMES: Record<number, string> = { 3: "#text", 4: "#cdata-section", 8: "#comment", 9: "#document", 11: "#document-fragment" };
Object.defineProperty(Node.prototype, "nodeName", {
  configurable: true,
  get(this: Node) {
    if (this.nodeType === 1) return (this as Element).tagName;
    if (this.nodeType === 10) return (this as DocumentType).name;
    if (this.nodeType === 7) return (this as ProcessingInstruction).target;
    return NODE_NAMES[this.nodeType] ?? "";
  },
});

// happy-dom's NodeIterator stops when the node it stands on is removed; the DOM spec
// (and every browser) moves it to the preceding node and goes on, which DOMPurify
// relies on to visit what follows a removed element.  A spec-like iterator instead.
class SpecNodeIterator {
  private reference: Node;
  /** The node before the reference in tree order, still there when the reference is removed. */
  private beforeReference: Node | null = null;
  private started = false;
  constructor(
    readonly root: Node,
    readonly whatToShow: number,
    readonly filter: NodeFilter | null,
  ) {
    this.reference = root;
  }
  nextNode(): Node | null {
    let node: Node | null = this.reference;
    if (this.started && node !== this.root && !this.root.contains(node)) node = this.beforeReference ?? this.root;
    if (!this.started) {
      this.started = true;
      if (this.accepts(node)) return node;
    }
    for (node = following(node, this.root); node; node = following(node, this.root)) {
      if (this.accepts(node)) {
        this.beforeReference = preceding(node, this.root);
        this.reference = node;
        return node;
      }
    }
    return null;
  }
  private accepts(node: Node): boolean {
    if (!(this.whatToShow & (1 << (node.nodeType - 1)))) return false;
    const filter = this.filter;
    if (!filter) return true;
    const verdict = typeof filter === "function" ? filter(node) : filter.acceptNode(node);
    return verdict === 1;
  }
}
function following(node: Node, root: Node): Node | null {
  if (node.firstChild) return node.firstChild;
  for (let current: Node | null = node; current && current !== root; current = current.parentNode) {
    if (current.nextSibling) return current.nextSibling;
  }
  return null;
}
function preceding(node: Node, root: Node): Node | null {
  if (node === root) return null;
  let previous = node.previousSibling;
  if (!previous) return node.parentNode;
  while (previous.lastChild) previous = previous.lastChild;
  return previous;
}
// On the prototype that really holds it: happy-dom's window classes are subclasses of its own.
let documentPrototype = Object.getPrototypeOf(document) as object;
while (!Object.prototype.hasOwnProperty.call(documentPrototype, "createNodeIterator")) documentPrototype = Object.getPrototypeOf(documentPrototype);
Object.defineProperty(documentPrototype, "createNodeIterator", {
  configurable: true,
  writable: true,
  value(root: Node, whatToShow = 0xffffffff, filter: NodeFilter | null = null) {
    return new SpecNodeIterator(root, whatToShow, filter) as unknown as NodeIterator;
  },
});
