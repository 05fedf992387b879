/**
 * Whether we can reach the server: the browser's own belief (navigator.onLine and
 * its online/offline events) and the SDK's sync loop (ERROR or RECONNECTING means
 * the server stopped answering, which the browser often does not notice).
 */
import { effect } from "@preact/signals";
import type { MatrixClient } from "matrix-js-sdk";
import { online, syncState } from "../state/app";
import { flushOutbox } from "./outbox";

const UNREACHABLE = new Set(["ERROR", "RECONNECTING"]);

/** Starts writing `online`; returns the function that stops it. */
export function startConnectivity(matrix: MatrixClient | null): () => void {
  const update = () => {
    const browserOnline = typeof navigator === "undefined" ? true : navigator.onLine;
    online.value = browserOnline && !UNREACHABLE.has(syncState.value);
  };
  const onBrowserOnline = () => {
    update();
    // The SDK's keep-alive backs off up to minutes; the browser just told us to try now.
    matrix?.retryImmediately();
  };
  window.addEventListener("online", onBrowserOnline);
  window.addEventListener("offline", update);
  const stopEffect = effect(() => {
    void syncState.value;
    update();
  });
  let wasOnline = online.peek();
  const stopFlush = effect(() => {
    const now = online.value;
    if (now && !wasOnline) void flushOutbox();
    wasOnline = now;
  });
  return () => {
    window.removeEventListener("online", onBrowserOnline);
    window.removeEventListener("offline", update);
    stopEffect();
    stopFlush();
  };
}
