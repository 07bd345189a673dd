//! Native host library (being written).
