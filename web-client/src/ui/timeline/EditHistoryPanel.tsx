/**
 * The versions of an edited message, oldest first, with their times: the original and
 * each m.replace from the same sender (others' replacements are invalid and ignored).
 * spec: client-server-api/_index.md#event-replacements, GET /relations/{eventId}/m.replace
 */
import type { MatrixEvent } from "matrix-js-sdk";
import { useEffect, useState } from "preact/hooks";
import { client } from "../../state/app";
import { Dialog } from "../Dialog";

interface Version {
  id: string;
  ts: number;
  body: string;
}

function versionOf(event: MatrixEvent, isEdit: boolean): Version {
  const content = event.getOriginalContent();
  const shown = isEdit ? ((content["m.new_content"] as Record<string, unknown> | undefined) ?? content) : content;
  return { id: event.getId()!, ts: event.getTs(), body: typeof shown.body === "string" ? shown.body : "" };
}

async function loadVersions(roomId: string, eventId: string): Promise<Version[]> {
  const matrix = client.value!;
  const edits: MatrixEvent[] = [];
  let original: MatrixEvent | null | undefined;
  let from: string | undefined;
  // Pages of the relation, newest first; a message is rarely edited more than a few times.
  for (let page = 0; page < 10; page++) {
    const result = await matrix.relations(roomId, eventId, "m.replace", "m.room.message", { from });
    original ??= result.originalEvent;
    edits.push(...result.events);
    if (!result.nextBatch) break;
    from = result.nextBatch;
  }
  if (!original) throw new Error("The message could not be loaded");
  await Promise.all([original, ...edits].map((event) => matrix.decryptEventIfNeeded(event)));
  const sender = original.getSender();
  return [
    versionOf(original, false),
    ...edits
      .filter((edit) => edit.getSender() === sender && !edit.isRedacted())
      .sort((a, b) => a.getTs() - b.getTs())
      .map((edit) => versionOf(edit, true)),
  ];
}

export function EditHistoryPanel(props: { roomId: string; eventId: string }) {
  const [versions, setVersions] = useState<Version[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    loadVersions(props.roomId, props.eventId).then(setVersions, (failure: unknown) =>
      setError(failure instanceof Error ? failure.message : String(failure)),
    );
  }, [props.roomId, props.eventId]);
  return (
    <Dialog title="Edit history">
      {error && <p class="error-text" role="alert">Could not load the history: {error}</p>}
      {!versions && !error && <p role="status">Loading…</p>}
      {versions && (
        <ol class="edit-history">
          {versions.map((version, index) => (
            <li key={version.id}>
              <time dateTime={new Date(version.ts).toISOString()}>
                {new Date(version.ts).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })}
              </time>
              <span class="edit-history-kind">{index === 0 ? "Original" : index === versions.length - 1 ? "Current" : "Edit"}</span>
              <p>{version.body}</p>
            </li>
          ))}
        </ol>
      )}
    </Dialog>
  );
}
