// Agent names for pages that show agent ids: loaded once and refreshed now and then (agents
// change rarely; runs and gates arrive every second).

import { type Agent, type List, get } from "./api";
import { useLive } from "./ui";

const REFRESH_MS = 30_000;

export function useAgents(): { agents: Agent[]; nameOf: (id: string) => string } {
  const live = useLive(() => get<List<Agent>>("/api/agents?limit=500"), [], REFRESH_MS);
  const agents = live.data?.data ?? [];
  const names = new Map(agents.map((agent) => [agent.id, agent.name]));
  return { agents, nameOf: (id) => names.get(id) ?? id };
}
