//! A/B tests in the server: the exposure buffer behind assignment, and the decision worker
//! that concludes experiments, stops arms and promotes winners.

pub mod exposures;
pub mod worker;
