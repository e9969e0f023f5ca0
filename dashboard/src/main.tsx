// The dashboard shell: who is signed in, the navigation, and which page the path names.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";

import { type Session, currentSession, get, holds, signOut, whenUnauthorized, type List, type Gate } from "./api";
import { follow, match, navigate, useLocation } from "./router";
import { useLive } from "./ui";
import { SignIn } from "./pages/signin";
import { RunList } from "./pages/runs";
import { RunDetail } from "./pages/run";
import { Approvals } from "./pages/approvals";
import { PolicyList, PolicyDetail } from "./pages/policies";
import { Agents } from "./pages/agents";
import { ProviderKeys } from "./pages/keys";
import { Webhooks, WebhookDetail } from "./pages/webhooks";
import { Spend } from "./pages/spend";
import "./style.css";

function Shell({ session, onSignOut }: { session: Session; onSignOut: () => void }) {
  const { path } = useLocation();
  const pending = useLive(() => get<List<Gate>>("/api/approval-requests?status=pending&limit=1"), []);
  const section = (prefix: string) => (path === prefix || path.startsWith(prefix + "/") ? "active" : undefined);

  let page;
  let params;
  if ((params = match("/runs/:id", path))) page = <RunDetail id={params.id} session={session} />;
  else if (match("/approvals", path)) page = <Approvals session={session} />;
  else if ((params = match("/policies/:id", path))) page = <PolicyDetail id={params.id} session={session} />;
  else if (match("/policies", path)) page = <PolicyList session={session} />;
  else if (match("/agents", path)) page = <Agents session={session} />;
  else if (match("/keys", path)) page = <ProviderKeys />;
  else if ((params = match("/webhooks/:id", path))) page = <WebhookDetail id={params.id} session={session} />;
  else if (match("/webhooks", path)) page = <Webhooks />;
  else if (match("/spend", path)) page = <Spend />;
  else page = <RunList />;

  const waiting = pending.data?.total ?? 0;
  return (
    <div class="shell" onClick={follow}>
      <nav class="sidebar">
        <a class="brand" href="/runs">
          Rungate
        </a>
        <a href="/runs" class={section("/runs") ?? (path === "/" ? "active" : undefined)}>
          Runs
        </a>
        <a href="/approvals" class={section("/approvals")}>
          Approvals {waiting > 0 && <span class="count" aria-label={`${waiting} pending`}>{waiting}</span>}
        </a>
        <a href="/policies" class={section("/policies")}>
          Policies
        </a>
        <a href="/agents" class={section("/agents")}>
          Agents
        </a>
        <a href="/keys" class={section("/keys")}>
          Provider keys
        </a>
        <a href="/webhooks" class={section("/webhooks")}>
          Webhooks
        </a>
        <a href="/spend" class={section("/spend")}>
          Spend
        </a>
        <footer class="who">
          <span title={session.actor}>{session.actor}</span>
          <span class="muted">{session.scopes.join(" · ")}</span>
          {!holds(session, "write") && !holds(session, "approve") && <span class="muted">read-only</span>}
          <button class="link" onClick={onSignOut}>
            Sign out
          </button>
        </footer>
      </nav>
      <main>{page}</main>
    </div>
  );
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  useLocation();

  useEffect(() => {
    whenUnauthorized(() => setSession(null));
    currentSession().then(
      (answer) => setSession(answer.data),
      () => setSession(null),
    );
  }, []);

  if (session === undefined) return <p class="muted center">Loading…</p>;
  if (session === null) {
    return (
      <SignIn
        onSignedIn={(fresh) => {
          setSession(fresh);
          if (location.pathname === "/login" || location.pathname === "/") navigate("/runs", true);
        }}
      />
    );
  }
  return (
    <Shell
      session={session}
      onSignOut={() => {
        signOut().finally(() => {
          setSession(null);
          navigate("/login", true);
        });
      }}
    />
  );
}

render(<App />, document.getElementById("app")!);
