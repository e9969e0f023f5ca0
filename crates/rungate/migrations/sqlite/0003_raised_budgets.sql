-- A run's USD cap raised by an approver (budget.on_exceed: approval); NULL keeps the policy's.
ALTER TABLE runs ADD COLUMN budget_limit_nanos INTEGER;
