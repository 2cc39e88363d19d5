//! Decoding the server's answers: lenient where the spec is loose, and a
//! value or a typed error for any bytes at all.

mod fuzz;
mod lenient;
