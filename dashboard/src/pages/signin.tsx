// Sign-in with the dashboard password or an admin token. The credential goes once to
// POST /api/session in the body (never in a URL); the gateway answers with an HttpOnly cookie.

import { useState } from "preact/hooks";

import { ApiError, type Session, signIn } from "../api";
import { Problem } from "../ui";

export function SignIn({ onSignedIn }: { onSignedIn: (session: Session) => void }) {
  const [secret, setSecret] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error>();

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const answer = await signIn(secret.trim());
      setSecret("");
      onSignedIn(answer.data);
    } catch (err) {
      const refused = err instanceof ApiError && err.status === 401;
      setError(refused ? new ApiError(401, err.code, "That password or admin token was not accepted.") : (err as Error));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form class="signin" onSubmit={submit}>
      <h1>Rungate</h1>
      <p class="muted">Sign in with the dashboard password or an admin token (rg_adm_…).</p>
      <label>
        Password or admin token
        <input
          name="secret"
          type="password"
          autocomplete="current-password"
          value={secret}
          onInput={(e) => setSecret((e.target as HTMLInputElement).value)}
          required
          autofocus
        />
      </label>
      <button type="submit" class="primary" disabled={busy || !secret.trim()}>
        {busy ? "Signing in…" : "Sign in"}
      </button>
      <Problem error={error} />
    </form>
  );
}
