//! `mailcat decode smtp`.
