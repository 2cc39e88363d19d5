//! Strict in what the SDK sends: a builder's values are checked against the
//! spec's constraints (the validating types progenitor generates from it)
//! before anything is sent.

use std::fmt;

use crate::error::{Error, Result};
use crate::operation::Operation;

/// `value` as the spec's type `T` for `field`, or an
/// [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) naming both.
pub(crate) fn checked<T>(op: Operation, field: &str, value: String) -> Result<T>
where
    T: TryFrom<String>,
    T::Error: fmt::Display,
{
    T::try_from(value.clone()).map_err(|e| {
        Error::invalid_input(format!("`{field}` {value:?} is not valid: {e}")).with_operation(op)
    })
}

/// A required field, or an error naming it.
pub(crate) fn required<T>(op: Operation, field: &str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| Error::invalid_input(format!("`{field}` is required")).with_operation(op))
}

/// Each of `values` as the spec's type, with its index in the error.
pub(crate) fn each<T>(op: Operation, field: &str, values: Vec<String>) -> Result<Vec<T>>
where
    T: TryFrom<String>,
    T::Error: fmt::Display,
{
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| checked(op, &format!("{field}[{i}]"), v))
        .collect()
}
