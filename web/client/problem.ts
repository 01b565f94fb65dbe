// Errors in words for a person: what the server said, which fields were wrong (the
// google.rpc.BadRequest it attaches), and what the caller can do.

import { Code, ConnectError } from "@connectrpc/connect";

import { BadRequestSchema, ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** One field of the request the server refused, e.g. `scheme.tiers[2].min_score`. */
export interface FieldProblem {
  field: string;
  description: string;
}

/** What went wrong, for a person: the server's message, and whether trying again helps. */
export interface Problem {
  code: Code;
  message: string;
  /** The server's constant reason (google.rpc.ErrorInfo), e.g. `INVALID_ARGUMENT`. */
  reason: string;
  /** The fields the server refused, each with why; empty when none was named. */
  fields: FieldProblem[];
  /** The server answered ABORTED: someone else changed the record first. */
  stale: boolean;
  /** Worth retrying as is (the server or the network was briefly unavailable). */
  retry: boolean;
  /** A refusal of the caller: not signed in, or a role that may not do this. */
  refused: boolean;
}

export function problem(error: unknown): Problem {
  const e = ConnectError.from(error);
  const fields = e
    .findDetails(BadRequestSchema)
    .flatMap((b) => b.fieldViolations.map((v) => ({ field: v.field, description: v.description })));
  return {
    code: e.code,
    message: e.rawMessage,
    reason: e.findDetails(ErrorInfoSchema)[0]?.reason ?? "",
    fields,
    stale: e.code === Code.Aborted,
    retry: e.code === Code.Unavailable || e.code === Code.ResourceExhausted,
    refused: e.code === Code.Unauthenticated || e.code === Code.PermissionDenied,
  };
}
