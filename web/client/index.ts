// The Vitals TypeScript client: the generated services (client/gen/, from ../proto by
// `npm run generate`) over gRPC-Web, plus the little a front end needs around them:
// the API key as a bearer token, paging as async iterators, and errors in words.
//
//   const vitals = createVitals({ endpoint: "https://vitals.example.com", apiKey });
//   const top = await vitals.evaluations.listAtRisk({ pageSize: 20 });
//   for await (const e of pages((pageToken) => vitals.evaluations.listAtRisk({ pageToken }),
//                               (r) => r.evaluations)) { ... }

import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";

import { CustomerService } from "./gen/vitals/v1/customer_pb.js";
import { EvaluationService } from "./gen/vitals/v1/evaluation_pb.js";
import { EventService } from "./gen/vitals/v1/event_pb.js";
import { FollowUpService } from "./gen/vitals/v1/followup_pb.js";
import { ModelService } from "./gen/vitals/v1/model_pb.js";
import { PortfolioService } from "./gen/vitals/v1/portfolio_pb.js";

export * from "./gen/vitals/v1/customer_pb.js";
export * from "./gen/vitals/v1/evaluation_pb.js";
export * from "./gen/vitals/v1/event_pb.js";
export * from "./gen/vitals/v1/followup_pb.js";
export * from "./gen/vitals/v1/model_pb.js";
export * from "./gen/vitals/v1/portfolio_pb.js";
export { Code, ConnectError };

export interface VitalsOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:50051`. */
  endpoint: string;
  /** An API key; omit for a server without keys (loopback only). */
  apiKey?: string;
  /** Who acts, for the audit trail of writes (`x-vitals-actor`). */
  actor?: string;
  /**
   * Told the caller's roles (reader, pii-reader, writer, admin) from each answer's
   * `x-vitals-roles` header, so a front end offers only what they may do. The server
   * still checks every call.
   */
  onRoles?: (roles: string[]) => void;
  /**
   * The language the server writes its words in (factor labels and values, segment
   * names, reasons, sentences), sent as `accept-language`: a BCP 47 tag such as "en" or
   * "zh-CN", or a function asked on every call (a page whose language can change).
   * Without it the browser's own Accept-Language applies.
   */
  language?: string | (() => string);
}

export interface Vitals {
  customers: Client<typeof CustomerService>;
  events: Client<typeof EventService>;
  evaluations: Client<typeof EvaluationService>;
  followUps: Client<typeof FollowUpService>;
  models: Client<typeof ModelService>;
  portfolio: Client<typeof PortfolioService>;
}

/** Clients for every Vitals service over one gRPC-Web transport. */
export function createVitals(options: VitalsOptions): Vitals {
  const headers: Interceptor = (next) => async (request) => {
    if (options.apiKey) request.header.set("authorization", `Bearer ${options.apiKey}`);
    if (options.actor) request.header.set("x-vitals-actor", options.actor);
    const language = typeof options.language === "function" ? options.language() : options.language;
    if (language) request.header.set("accept-language", language);
    const response = await next(request);
    const roles = response.header.get("x-vitals-roles");
    if (roles !== null) options.onRoles?.(roles.split(",").filter((r) => r !== ""));
    return response;
  };
  const transport = createGrpcWebTransport({
    baseUrl: options.endpoint.replace(/\/+$/, ""),
    interceptors: [headers],
  });
  return {
    customers: createClient(CustomerService, transport),
    events: createClient(EventService, transport),
    evaluations: createClient(EvaluationService, transport),
    followUps: createClient(FollowUpService, transport),
    models: createClient(ModelService, transport),
    portfolio: createClient(PortfolioService, transport),
  };
}

/**
 * Every item of a paged list, fetching a page only when the previous one is used up:
 * `fetch(pageToken)` asks for one page, `items(response)` picks its rows.
 */
export async function* pages<R extends { nextPageToken: string }, T>(
  fetch: (pageToken: string) => Promise<R>,
  items: (response: R) => T[],
): AsyncGenerator<T> {
  let token = "";
  do {
    const response = await fetch(token);
    yield* items(response);
    token = response.nextPageToken;
  } while (token !== "");
}

export { type FieldProblem, type Problem, problem } from "./problem.js";
