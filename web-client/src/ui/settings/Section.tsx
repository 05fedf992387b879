import type { ComponentChildren } from "preact";

/** A titled part of the settings, a region named by its heading. */
export function SettingsSection(props: { id: string; title: string; children: ComponentChildren }) {
  return (
    <section class="settings-section" aria-labelledby={props.id}>
      <h3 id={props.id}>{props.title}</h3>
      {props.children}
    </section>
  );
}
