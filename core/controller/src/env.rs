//! Where fresh ids and the time come from: the OS and the wall clock.

use strata_model::plan::Env;

/// Fresh ids from the OS and the wall clock.
pub struct RealEnv;

impl Env for RealEnv {
    fn uuid(&mut self) -> String {
        uuid::Uuid::new_v4().to_string()
    }

    fn now_ms(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}
