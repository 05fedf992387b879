/** A sentence for a failed request: the server's error text when it gave one (MatrixError), else the exception's. */
export function errorMessage(caught: unknown): string {
  if (caught && typeof caught === "object") {
    const data = (caught as { data?: { error?: unknown; errcode?: unknown } }).data;
    if (data && typeof data.error === "string" && data.error) return data.error;
    const errcode = (caught as { errcode?: unknown }).errcode;
    if (errcode === "M_FORBIDDEN") return "You don't have permission to do that.";
    if (errcode === "M_LIMIT_EXCEEDED") return "Too many requests; try again in a moment.";
    if (caught instanceof Error && caught.message) {
      if (caught.name === "ConnectionError" || /fetch|network/i.test(caught.message)) return "Can't reach the server. Check your connection.";
      return caught.message;
    }
  }
  return String(caught);
}
