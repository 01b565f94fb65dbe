// Errors in words for a person: what the server said, and what the caller can do.

import { Code, ConnectError } from "@connectrpc/connect";

/** What went wrong, for a person: the server's message, and whether trying again helps. */
export interface Problem {
  code: Code;
  message: string;
  /** The server answered ABORTED: someone else changed the record first. */
  stale: boolean;
  /** Worth retrying as is (the server or the network was briefly unavailable). */
  retry: boolean;
  /** A refusal of the caller: not signed in, or a role that may not do this. */
  refused: boolean;
}

export function problem(error: unknown): Problem {
  const e = ConnectError.from(error);
  return {
    code: e.code,
    message: e.rawMessage,
    stale: e.code === Code.Aborted,
    retry: e.code === Code.Unavailable || e.code === Code.ResourceExhausted,
    refused: e.code === Code.Unauthenticated || e.code === Code.PermissionDenied,
  };
}
