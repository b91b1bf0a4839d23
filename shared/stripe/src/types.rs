//! The Stripe objects under their former module path; they live in [`crate::objects`].

pub use crate::objects::*;
