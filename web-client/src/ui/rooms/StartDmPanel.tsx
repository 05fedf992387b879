/**
 * "Start chat": find a person in the user directory and open a direct message with
 * them — the existing DM if there is one, else a new encrypted one.
 * spec: client-server-api/modules/dm.md, client-server-api/_index.md#user-directory
 */
import { useEffect, useRef, useState } from "preact/hooks";
import { Dialog } from "../Dialog";
import { client, panel, selectedRoomId } from "../../state/app";
import { existingDm, startDm } from "../../rooms/create";
import { errorMessage } from "../../rooms/errors";
import { Avatar } from "./Avatar";
import "./rooms.css";

interface Person {
  user_id: string;
  display_name?: string;
  avatar_url?: string;
}

export function StartDmPanel() {
  const [term, setTerm] = useState("");
  const [people, setPeople] = useState<Person[]>([]);
  const [searching, setSearching] = useState(false);
  const [error, setError] = useState("");
  const [encrypted, setEncrypted] = useState(true);
  const latest = useRef(0);
  const me = client.value?.getUserId();

  useEffect(() => {
    const matrix = client.value;
    const query = term.trim();
    if (!matrix || !query) {
      setPeople([]);
      return;
    }
    const timer = setTimeout(async () => {
      const ticket = ++latest.current;
      setSearching(true);
      setError("");
      try {
        const { results } = await matrix.searchUserDirectory({ term: query, limit: 20 });
        if (ticket !== latest.current) return;
        const found = results.filter((person) => person.user_id !== me);
        // A full user ID that the directory doesn't list (another server, no shared room) can still be messaged.
        if (/^@[^:\s]+:\S+$/.test(query) && query !== me && !found.some((person) => person.user_id === query)) found.push({ user_id: query });
        setPeople(found);
      } catch (caught) {
        if (ticket === latest.current) setError(errorMessage(caught));
      } finally {
        if (ticket === latest.current) setSearching(false);
      }
    }, 250);
    return () => clearTimeout(timer);
  }, [term]);

  return (
    <Dialog title="Start chat">
      <div class="rooms-form">
        <label class="rooms-field">
          <span>Find people</span>
          <input type="search" value={term} placeholder="Name or @user:server" onInput={(e) => setTerm(e.currentTarget.value)} />
        </label>
        <label class="rooms-choice">
          <input type="checkbox" checked={encrypted} onChange={(e) => setEncrypted(e.currentTarget.checked)} />
          <span>End-to-end encrypt new chats</span>
        </label>
        {error && <p class="error-text" role="alert">{error}</p>}
        <ul class="rooms-result-list" aria-label="People" aria-busy={searching}>
          {people.map((person) => <PersonItem key={person.user_id} person={person} encrypted={encrypted} />)}
        </ul>
        <p class="rooms-status-text" role="status">
          {searching ? "Searching…" : term.trim() && people.length === 0 && !error ? "Nobody found." : ""}
        </p>
      </div>
    </Dialog>
  );
}

function PersonItem({ person, encrypted }: { person: Person; encrypted: boolean }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState("");
  const matrix = client.value;
  const name = person.display_name || person.user_id;
  const hasDm = matrix ? existingDm(matrix, person.user_id) !== undefined : false;
  const open = async () => {
    if (!matrix) return;
    setBusy(true);
    setError("");
    try {
      selectedRoomId.value = await startDm(matrix, person.user_id, encrypted);
      panel.value = null;
    } catch (caught) {
      setError(errorMessage(caught));
      setBusy(false);
    }
  };
  return (
    <li class="rooms-result-item">
      <Avatar name={name} mxc={person.avatar_url} />
      <div class="rooms-result-text">
        <span class="rooms-result-title">{name}</span>
        <span class="rooms-result-meta">{person.user_id}</span>
        {error && <p class="error-text" role="alert">{error}</p>}
      </div>
      <button type="button" class="primary" disabled={busy} aria-label={`${hasDm ? "Open chat with" : "Message"} ${name}`} onClick={open}>
        {busy ? "Opening…" : hasDm ? "Open chat" : "Message"}
      </button>
    </li>
  );
}
