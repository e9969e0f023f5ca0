//! A run's budget as its single owner sees it: committed spend, and the holds of calls in
//! flight. Admission and release happen under one short lock per run, so concurrent calls of a
//! run see each other's reservations — with projected enforcement a run cannot be admitted past
//! its cap, whatever the concurrency (SPEC §7).
//!
//! The judgement itself ([`judge`]) is a pure function of a [`Snapshot`], so the two places a
//! run's books can live share it: here, in memory, when one gateway owns the run (SQLite), and
//! in the run's database row, under its row lock, when several gateways share it (PostgreSQL,
//! see `store::postgres::writer`).
//!
//! In-memory holds are written to the ledger (reservation, then settlement and release) in the
//! same transaction as the step that settles them. A gateway that dies takes its holds with it,
//! so after a restart nothing stays reserved and the spend is exactly the sum of settled steps.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::money::UsdNanos;
use crate::providers::pricing::Price;

/// Output tokens assumed for a call that sets no `max_tokens`.
pub const DEFAULT_OUTPUT_ESTIMATE: u64 = 4096;
/// A clamp that would leave fewer output tokens than this refuses the call instead.
pub const MIN_CLAMPED_OUTPUT: u64 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// Refuse when spend + holds + this call's estimate would pass the cap.
    Projected,
    /// Refuse only once the committed spend has reached the cap.
    Crossed,
}

/// The caps a run pinned with its policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    pub usd: Option<UsdNanos>,
    pub tokens: Option<u64>,
    /// Steps a run may take, counting calls in flight (runaway prevention).
    pub max_steps: Option<u64>,
    pub enforcement: Enforcement,
    pub clamp_max_tokens: bool,
}

impl Caps {
    pub const NONE: Caps = Caps {
        usd: None,
        tokens: None,
        max_steps: None,
        enforcement: Enforcement::Projected,
        clamp_max_tokens: false,
    };
}

/// What a call may cost, as far as can be known before forwarding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallEstimate {
    pub input_tokens: u64,
    /// The request's `max_tokens`, if it set one.
    pub max_output: Option<u64>,
    pub price: Option<Price>,
}

/// Why a call was refused before forwarding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Steps {
        steps: u64,
        limit: u64,
    },
    Usd {
        spend: UsdNanos,
        reserved: UsdNanos,
        estimate: UsdNanos,
        limit: UsdNanos,
    },
    Tokens {
        used: u64,
        reserved: u64,
        estimate: u64,
        limit: u64,
    },
}

/// A run's books at one moment: what is committed and what calls in flight hold.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub spend: UsdNanos,
    pub tokens: u64,
    pub steps: u64,
    pub reserved: UsdNanos,
    pub reserved_tokens: u64,
    pub in_flight: u64,
}

type State = Snapshot;

/// What an admitted call holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    pub amount: UsdNanos,
    pub tokens: u64,
    /// The output limit the call must be forwarded with, when the cap lowered it.
    pub clamped_output: Option<u64>,
}

/// Gives back a hold kept outside this process (the shared books' row) when its call ends
/// without a settled step. Fire-and-forget: the hold expires anyway if the release is lost.
pub trait Release: Send + Sync + std::fmt::Debug {
    fn release(&self, run_id: &str, hold_id: &str);
}

#[derive(Clone, Debug, Default)]
pub struct Books {
    state: Arc<Mutex<State>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Input tokens assumed before the provider counts them: one token per three characters plus
/// a per-request overhead. Tokenizers average about four characters per token on prose, so
/// this errs high — an estimate that errs low is what lets a run pass its cap.
pub fn estimate_input_tokens(prompt_chars: usize) -> u64 {
    (prompt_chars as u64).div_ceil(3) + 16
}

/// What a call may cost at most: its input estimate plus its output limit (or the default).
pub fn projected_cost(
    price: Option<Price>,
    input_tokens: u64,
    max_output: Option<u64>,
) -> UsdNanos {
    cost(
        price,
        input_tokens,
        max_output.unwrap_or(DEFAULT_OUTPUT_ESTIMATE),
    )
}

fn cost(price: Option<Price>, input: u64, output: u64) -> UsdNanos {
    price.map_or(UsdNanos::ZERO, |p| {
        UsdNanos::for_tokens(input, p.input).saturating_add(UsdNanos::for_tokens(output, p.output))
    })
}

impl Books {
    pub fn new(spend: UsdNanos, tokens: u64, steps: u64) -> Books {
        Books {
            state: Arc::new(Mutex::new(State {
                spend,
                tokens,
                steps,
                ..State::default()
            })),
        }
    }

    /// Committed spend and tokens.
    pub fn committed(&self) -> (UsdNanos, u64) {
        let state = lock(&self.state);
        (state.spend, state.tokens)
    }

    /// Settled steps.
    pub fn steps(&self) -> u64 {
        lock(&self.state).steps
    }

    /// Admits a call under `caps`, holding its projected cost; or refuses it.
    pub fn admit(&self, caps: &Caps, call: &CallEstimate) -> Result<Hold, Refusal> {
        let mut state = lock(&self.state);
        let admission = judge(&state, caps, call)?;
        state.reserved = state.reserved.saturating_add(admission.amount);
        state.reserved_tokens += admission.tokens;
        state.in_flight += 1;
        Ok(Hold {
            owner: Owner::Local(self.state.clone()),
            amount: admission.amount,
            tokens: admission.tokens,
            clamped_output: admission.clamped_output,
            open: true,
        })
    }

    /// Judges a held call again at a new estimate (a failover to a model of another price):
    /// under one lock its reservation is replaced by the new one, or kept as it was when the
    /// new one is refused — so a run's cap holds for whichever model finally answers. A hold
    /// of the shared books is left as it is (those are judged in the database).
    pub fn readmit(
        &self,
        hold: &mut Hold,
        caps: &Caps,
        call: &CallEstimate,
    ) -> Result<(), Refusal> {
        if !matches!(hold.owner, Owner::Local(_)) || !hold.open {
            return Ok(());
        }
        let mut state = lock(&self.state);
        release(&mut state, hold);
        let judged = judge(&state, caps, call);
        if let Ok(admission) = &judged {
            hold.amount = admission.amount;
            hold.tokens = admission.tokens;
            hold.clamped_output = admission.clamped_output;
        }
        state.reserved = state.reserved.saturating_add(hold.amount);
        state.reserved_tokens += hold.tokens;
        state.in_flight += 1;
        judged.map(|_| ())
    }

    /// Adopts totals committed outside a hold (a reported tool step).
    pub fn adopt(&self, spend: UsdNanos, tokens: u64, steps: u64) {
        let mut state = lock(&self.state);
        state.spend = state.spend.max(spend);
        state.tokens = state.tokens.max(tokens);
        state.steps = state.steps.max(steps);
    }
}

/// Judges a call against the books: the amount and tokens to hold for it (with the output
/// limit lowered when a clamp is allowed), or why it is refused.
pub fn judge(state: &Snapshot, caps: &Caps, call: &CallEstimate) -> Result<Admission, Refusal> {
    let mut output = call.max_output.unwrap_or(DEFAULT_OUTPUT_ESTIMATE);
    if let Some(limit) = caps
        .max_steps
        .filter(|limit| state.steps + state.in_flight >= *limit)
    {
        return Err(Refusal::Steps {
            steps: state.steps + state.in_flight,
            limit,
        });
    }
    match caps.enforcement {
        Enforcement::Crossed => {
            if let Some(limit) = caps.usd.filter(|limit| state.spend >= *limit) {
                let estimate = cost(call.price, call.input_tokens, output);
                return Err(Refusal::Usd {
                    spend: state.spend,
                    reserved: state.reserved,
                    estimate,
                    limit,
                });
            }
            if let Some(limit) = caps.tokens.filter(|limit| state.tokens >= *limit) {
                let estimate = call.input_tokens + output;
                return Err(Refusal::Tokens {
                    used: state.tokens,
                    reserved: state.reserved_tokens,
                    estimate,
                    limit,
                });
            }
        }
        Enforcement::Projected => {
            if let Some(limit) = caps.usd {
                output = fit_usd(state, caps, call, output, limit)?;
            }
            if let Some(limit) = caps.tokens {
                output = fit_tokens(state, caps, call, output, limit)?;
            }
        }
    }
    let amount = cost(call.price, call.input_tokens, output);
    let tokens = call.input_tokens + output;
    // The limit to forward: lowered by a clamp, or made explicit so the estimate is a bound.
    let capped = caps.usd.is_some() || caps.tokens.is_some();
    let clamped = match call.max_output {
        Some(requested) => (output < requested).then_some(output),
        None => (capped && caps.clamp_max_tokens && caps.enforcement == Enforcement::Projected)
            .then_some(output),
    };
    Ok(Admission {
        amount,
        tokens,
        clamped_output: clamped,
    })
}

/// The output budget left for this call under the USD cap, clamped when allowed.
fn fit_usd(
    state: &State,
    caps: &Caps,
    call: &CallEstimate,
    output: u64,
    limit: UsdNanos,
) -> Result<u64, Refusal> {
    let available = limit
        .saturating_sub(state.spend)
        .saturating_sub(state.reserved);
    let estimate = cost(call.price, call.input_tokens, output);
    if estimate <= available {
        return Ok(output);
    }
    let refusal = Refusal::Usd {
        spend: state.spend,
        reserved: state.reserved,
        estimate,
        limit,
    };
    let Some(price) = call
        .price
        .filter(|p| caps.clamp_max_tokens && p.output.0 > 0)
    else {
        return Err(refusal);
    };
    let left = available.saturating_sub(UsdNanos::for_tokens(call.input_tokens, price.input));
    // Largest n with for_tokens(n, output price) <= left.
    let mut fits =
        u64::try_from(i128::from(left.0.max(0)) * 1_000_000 / i128::from(price.output.0))
            .unwrap_or(0);
    // Costs round up to the nano-dollar: step down until the clamped call surely fits.
    while fits > 0 && UsdNanos::for_tokens(fits, price.output) > left {
        fits -= 1;
    }
    if fits >= MIN_CLAMPED_OUTPUT {
        Ok(fits.min(output))
    } else {
        Err(refusal)
    }
}

fn fit_tokens(
    state: &State,
    caps: &Caps,
    call: &CallEstimate,
    output: u64,
    limit: u64,
) -> Result<u64, Refusal> {
    let available = limit
        .saturating_sub(state.tokens)
        .saturating_sub(state.reserved_tokens);
    let estimate = call.input_tokens + output;
    if estimate <= available {
        return Ok(output);
    }
    let refusal = Refusal::Tokens {
        used: state.tokens,
        reserved: state.reserved_tokens,
        estimate,
        limit,
    };
    let fits = available.saturating_sub(call.input_tokens);
    if caps.clamp_max_tokens && fits >= MIN_CLAMPED_OUTPUT {
        Ok(fits.min(output))
    } else {
        Err(refusal)
    }
}

/// A call's reservation. Settling releases it and adopts the committed totals; dropping it
/// unsettled (the call was abandoned) releases it too, so no hold outlives its call.
#[must_use = "a hold must be settled or dropped to release its reservation"]
#[derive(Debug)]
pub struct Hold {
    owner: Owner,
    pub amount: UsdNanos,
    pub tokens: u64,
    /// The output limit the call must be forwarded with, when the cap lowered it.
    pub clamped_output: Option<u64>,
    open: bool,
}

/// Where a hold is kept.
#[derive(Debug)]
enum Owner {
    /// In this process's books.
    Local(Arc<Mutex<State>>),
    /// In the shared books of the database, as `(run, hold id)`.
    Shared {
        release: Arc<dyn Release>,
        run_id: String,
        hold_id: String,
    },
}

impl Hold {
    /// A hold the shared books granted; `release` gives it back if the call ends unsettled.
    pub fn shared(
        admission: Admission,
        release: Arc<dyn Release>,
        run_id: String,
        hold_id: String,
    ) -> Hold {
        Hold {
            owner: Owner::Shared {
                release,
                run_id,
                hold_id,
            },
            amount: admission.amount,
            tokens: admission.tokens,
            clamped_output: admission.clamped_output,
            open: true,
        }
    }

    /// The id of a hold in the shared books: the step that settles it removes it.
    pub fn shared_id(&self) -> Option<&str> {
        match &self.owner {
            Owner::Local(_) => None,
            Owner::Shared { hold_id, .. } => Some(hold_id),
        }
    }

    /// Releases the hold and adopts the totals the store committed with the settled step (a
    /// shared hold was removed by that same transaction).
    pub fn settle(mut self, spend: UsdNanos, tokens: u64, steps: u64) {
        if let Owner::Local(state) = &self.owner {
            let mut state = lock(state);
            release(&mut state, &self);
            state.spend = state.spend.max(spend);
            state.tokens = state.tokens.max(tokens);
            state.steps = state.steps.max(steps);
        }
        self.open = false;
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        match &self.owner {
            Owner::Local(state) => release(&mut lock(state), self),
            Owner::Shared {
                release,
                run_id,
                hold_id,
            } => release.release(run_id, hold_id),
        }
    }
}

fn release(state: &mut State, hold: &Hold) {
    state.reserved = state.reserved.saturating_sub(hold.amount);
    state.reserved_tokens = state.reserved_tokens.saturating_sub(hold.tokens);
    state.in_flight = state.in_flight.saturating_sub(1);
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
mod readmit_tests {
    use super::*;

    /// A price of `thousandths` of a dollar per million tokens.
    fn price(thousandths: i64) -> Price {
        Price {
            input: UsdNanos(thousandths * 1_000_000),
            output: UsdNanos(thousandths * 1_000_000),
            cached_input: None,
        }
    }

    #[test]
    fn a_readmitted_hold_swaps_its_reservation_or_keeps_the_old_one() {
        let books = Books::new(UsdNanos::ZERO, 0, 0);
        let caps = Caps {
            usd: Some(UsdNanos::from_usd(1.0).unwrap()),
            tokens: None,
            max_steps: None,
            enforcement: Enforcement::Projected,
            clamp_max_tokens: false,
        };
        let call = |p: i64| CallEstimate {
            input_tokens: 1_000_000,
            max_output: Some(0),
            price: Some(price(p)),
        };
        // $0.40 held; the failover model would cost $0.80: still under the $1 cap.
        let mut hold = books.admit(&caps, &call(400)).unwrap();
        assert_eq!(books.readmit(&mut hold, &caps, &call(800)), Ok(()));
        assert_eq!(hold.amount, UsdNanos(800_000_000));
        // Another call in flight leaves $0.20: a $0.90 model is refused, the hold unchanged.
        let other = books.admit(&caps, &call(0)).unwrap();
        assert!(books.readmit(&mut hold, &caps, &call(1_200)).is_err());
        assert_eq!(hold.amount, UsdNanos(800_000_000));
        let state = *lock(&books.state);
        assert_eq!(
            (state.reserved, state.in_flight),
            (UsdNanos(800_000_000), 2)
        );
        drop(other);
        drop(hold);
        let state = *lock(&books.state);
        assert_eq!((state.reserved, state.in_flight), (UsdNanos::ZERO, 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GPT4O: Price = Price {
        input: UsdNanos(2_500_000_000),
        output: UsdNanos(10_000_000_000),
        cached_input: None,
    };

    fn caps(usd: f64, clamp: bool) -> Caps {
        Caps {
            usd: UsdNanos::from_usd(usd),
            tokens: None,
            max_steps: None,
            enforcement: Enforcement::Projected,
            clamp_max_tokens: clamp,
        }
    }

    fn call(input: u64, max_output: u64) -> CallEstimate {
        CallEstimate {
            input_tokens: input,
            max_output: Some(max_output),
            price: Some(GPT4O),
        }
    }

    #[test]
    fn concurrent_holds_count_against_the_cap() {
        let books = Books::default();
        let caps = caps(0.03, false);
        // Each call may cost 1000 × $2.5/M + 1000 × $10/M = $0.0125.
        let first = books.admit(&caps, &call(1000, 1000));
        let second = books.admit(&caps, &call(1000, 1000));
        assert!(first.is_ok() && second.is_ok());
        assert!(matches!(
            books.admit(&caps, &call(1000, 1000)),
            Err(Refusal::Usd { .. })
        ));
        drop(first);
        let third = books.admit(&caps, &call(1000, 1000));
        assert!(third.is_ok(), "a dropped hold frees its reservation");
    }

    #[test]
    fn settling_adopts_the_real_spend_and_frees_the_rest() {
        let books = Books::default();
        let caps = caps(0.02, false);
        let hold = books.admit(&caps, &call(1000, 1000)).ok();
        if let Some(hold) = hold {
            hold.settle(UsdNanos::from_usd(0.015).unwrap_or_default(), 2000, 1);
        }
        assert_eq!(books.committed(), (UsdNanos(15_000_000), 2000));
        // $0.005 left: a $0.0125 call is refused, a small one admitted.
        assert!(books.admit(&caps, &call(1000, 1000)).is_err());
        assert!(books.admit(&caps, &call(100, 100)).is_ok());
    }

    #[test]
    fn clamping_lowers_max_tokens_to_what_is_left() {
        let books = Books::default();
        let clamp = caps(0.0075, true);
        // Input 1000 tokens = $0.0025; $0.005 left buys 500 output tokens at $10/M.
        let first = books.admit(&clamp, &call(1000, 4000));
        assert_eq!(first.as_ref().map(|h| h.clamped_output), Ok(Some(500)));
        let second = books.admit(&clamp, &call(1000, 4000));
        assert!(
            matches!(second, Err(Refusal::Usd { .. })),
            "nothing is left while the first is held"
        );
    }

    #[test]
    fn crossed_enforcement_blocks_only_after_the_cap_is_reached() {
        let books = Books::new(UsdNanos::ZERO, 0, 0);
        let crossed = Caps {
            enforcement: Enforcement::Crossed,
            ..caps(0.01, false)
        };
        let holds: Vec<_> = (0..5)
            .map(|_| books.admit(&crossed, &call(1000, 1000)))
            .collect();
        assert!(
            holds.iter().all(Result::is_ok),
            "in-flight calls are not counted"
        );
        books.adopt(UsdNanos::from_usd(0.01).unwrap_or_default(), 0, 5);
        assert!(books.admit(&crossed, &call(1, 1)).is_err());
    }

    #[test]
    fn token_caps_refuse_and_clamp() {
        let books = Books::default();
        let tokens = Caps {
            usd: None,
            tokens: Some(3000),
            max_steps: None,
            enforcement: Enforcement::Projected,
            clamp_max_tokens: false,
        };
        let first = books.admit(&tokens, &call(1000, 1000));
        assert!(first.is_ok());
        assert!(matches!(
            books.admit(&tokens, &call(1000, 1000)),
            Err(Refusal::Tokens { .. })
        ));
        let clamp = Caps {
            clamp_max_tokens: true,
            ..tokens
        };
        let clamped = books.admit(&clamp, &call(500, 1000));
        assert_eq!(clamped.as_ref().map(|h| h.clamped_output), Ok(Some(500)));
    }

    #[test]
    fn max_steps_counts_calls_in_flight() {
        let books = Books::new(UsdNanos::ZERO, 0, 1);
        let steps = Caps {
            max_steps: Some(3),
            ..Caps::NONE
        };
        let second = books.admit(&steps, &call(1, 1));
        let third = books.admit(&steps, &call(1, 1));
        assert!(second.is_ok() && third.is_ok());
        assert_eq!(
            books.admit(&steps, &call(1, 1)).err(),
            Some(Refusal::Steps { steps: 3, limit: 3 })
        );
        drop(third);
        assert!(
            books.admit(&steps, &call(1, 1)).is_ok(),
            "an abandoned call is not a step"
        );
    }
}
