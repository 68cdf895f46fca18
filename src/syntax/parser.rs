//! The pest parser generated from `grammar/coupler.pest`.

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/coupler.pest"]
pub struct CouplerParser;
