/**
 * A modal panel: the native <dialog> element opened with showModal(), so focus is
 * trapped, Escape closes it and assistive technology announces it by its title.
 * Panels are unmounted rather than closed, so the dialog gives the focus back itself
 * to whatever had it when it opened (usually the button that opened it).
 */
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import { panel } from "../state/app";

export function Dialog(props: { title: string; children: ComponentChildren; onClose?: () => void; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  const close = props.onClose ?? (() => (panel.value = null));
  useEffect(() => {
    const dialog = ref.current!;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!dialog.open) dialog.showModal?.();
    const onCancel = (event: Event) => {
      event.preventDefault();
      close();
    };
    dialog.addEventListener("cancel", onCancel);
    return () => {
      dialog.removeEventListener("cancel", onCancel);
      // After the unmount: the opener may itself re-render in the same pass.
      queueMicrotask(() => {
        if (opener?.isConnected && !document.querySelector("dialog[open]")) opener.focus();
      });
    };
  }, []);
  return (
    <dialog ref={ref} class={props.wide ? "panel wide" : "panel"} aria-label={props.title}>
      <header class="panel-header">
        <h2>{props.title}</h2>
        <button type="button" class="icon-button" aria-label="Close" onClick={close}>×</button>
      </header>
      <div class="panel-body">{props.children}</div>
    </dialog>
  );
}
