/**
 * People from the server's user directory matching what is typed, for the invite field
 * (spec: client-server-api/_index.md#user-directory).  Debounced; answers that arrive
 * after a newer query are dropped; failures leave the list empty (typing an ID works without it).
 */
import { useEffect, useRef, useState } from "preact/hooks";
import type { MatrixClient } from "matrix-js-sdk";

export interface Suggestion {
  userId: string;
  name?: string;
}

const DEBOUNCE_MS = 250;
const LIMIT = 10;

export function useDirectorySuggestions(matrix: MatrixClient, term: string, exclude: (userId: string) => boolean): Suggestion[] {
  const [found, setFound] = useState<Suggestion[]>([]);
  const latest = useRef(0);
  useEffect(() => {
    const query = term.trim();
    const ticket = ++latest.current;
    if (query.length < 2) {
      setFound([]);
      return;
    }
    const timer = setTimeout(() => {
      matrix
        .searchUserDirectory({ term: query, limit: LIMIT })
        .then(({ results }) => {
          if (ticket !== latest.current) return;
          setFound(results.filter((person) => !exclude(person.user_id)).map((person) => ({ userId: person.user_id, name: person.display_name })));
        })
        .catch(() => ticket === latest.current && setFound([]));
    }, DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [matrix, term]);
  return found;
}
