//! Waiting for a state with a deadline. The deadline only bounds a broken
//! run; a passing test returns as soon as the state holds.

use std::future::Future;
use std::time::Duration;

use crate::TestkitError;

/// How often conditions are polled.
const POLL: Duration = Duration::from_millis(50);

/// Poll `cond` until it holds or `deadline` passes.
pub async fn wait_until(
    what: &str,
    deadline: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<(), TestkitError> {
    wait_until_async(what, deadline, || std::future::ready(cond())).await
}

/// Like [`wait_until`] with an async condition.
pub async fn wait_until_async<F, Fut>(
    what: &str,
    deadline: Duration,
    mut cond: F,
) -> Result<(), TestkitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    loop {
        if cond().await {
            return Ok(());
        }
        if start.elapsed() >= deadline {
            return Err(TestkitError::Timeout {
                what: what.to_string(),
                after: deadline,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_once_the_state_holds_and_names_it_when_not() {
        let mut n = 0;
        wait_until("third poll", Duration::from_secs(5), || {
            n += 1;
            n >= 3
        })
        .await
        .unwrap();
        assert_eq!(n, 3);
        let err = wait_until("never", Duration::from_millis(120), || false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("never"), "{err}");
    }
}
