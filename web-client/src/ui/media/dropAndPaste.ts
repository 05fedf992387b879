/**
 * Files dropped on, or pasted into, the room view are sent, one after another; while
 * files are dragged over it a dashed "Drop to send" overlay covers it.  Text pastes
 * and drags of anything but files are left alone.
 */
import type { RefObject } from "preact";
import { useEffect } from "preact/hooks";
import { OFFLINE_ATTACH_TITLE, sendFiles } from "../../media/send";
import { online } from "../../state/app";
import "./media.css";

export function useDropAndPaste(roomId: string, target: RefObject<HTMLElement | null>): void {
  useEffect(() => {
    const element = target.current;
    if (!element) return;
    const overlay = document.createElement("div");
    overlay.className = "media-drop-overlay";
    overlay.setAttribute("aria-hidden", "true");
    let depth = 0;
    const show = () => {
      overlay.textContent = online.value ? "Drop to send" : OFFLINE_ATTACH_TITLE;
      overlay.classList.toggle("offline", !online.value);
      if (!overlay.isConnected) element.append(overlay);
    };
    const hide = () => {
      depth = 0;
      overlay.remove();
    };
    const onDragEnter = (event: DragEvent) => {
      if (!carriesFiles(event.dataTransfer)) return;
      event.preventDefault();
      depth++;
      show();
    };
    const onDragOver = (event: DragEvent) => {
      if (!carriesFiles(event.dataTransfer)) return;
      event.preventDefault(); // without this the browser opens the file instead
      event.dataTransfer!.dropEffect = online.value ? "copy" : "none";
    };
    const onDragLeave = (event: DragEvent) => {
      if (!carriesFiles(event.dataTransfer)) return;
      depth = Math.max(0, depth - 1);
      if (depth === 0) hide();
    };
    const onDrop = (event: DragEvent) => {
      if (!carriesFiles(event.dataTransfer)) return;
      event.preventDefault();
      hide();
      const files = [...(event.dataTransfer?.files ?? [])];
      if (files.length) void sendFiles(roomId, files);
    };
    const onPaste = (event: ClipboardEvent) => {
      const files = [...(event.clipboardData?.files ?? [])].map(namePastedFile);
      if (!files.length) return;
      event.preventDefault();
      void sendFiles(roomId, files);
    };
    element.classList.add("media-drop-target");
    element.addEventListener("dragenter", onDragEnter);
    element.addEventListener("dragover", onDragOver);
    element.addEventListener("dragleave", onDragLeave);
    element.addEventListener("drop", onDrop);
    element.addEventListener("paste", onPaste);
    return () => {
      hide();
      element.classList.remove("media-drop-target");
      element.removeEventListener("dragenter", onDragEnter);
      element.removeEventListener("dragover", onDragOver);
      element.removeEventListener("dragleave", onDragLeave);
      element.removeEventListener("drop", onDrop);
      element.removeEventListener("paste", onPaste);
    };
  }, [roomId, target.current]);
}

function carriesFiles(data: DataTransfer | null): boolean {
  return !!data && [...data.types].includes("Files");
}

/** Screenshots pasted from the clipboard are all called "image.png": give them a date. */
export function namePastedFile(file: File): File {
  if (file.name && file.name !== "image.png") return file;
  const stamp = new Date().toISOString().slice(0, 19).replace("T", " ").replace(/:/g, ".");
  const extension = file.type.split("/")[1]?.split("+")[0] ?? "bin";
  return new File([file], `Pasted ${file.type.startsWith("image/") ? "image" : "file"} ${stamp}.${extension}`, { type: file.type });
}
