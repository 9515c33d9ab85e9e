//! Errors found while loading a project.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a problem is: a file and, when known, a line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: PathBuf,
    /// Line number, starting at 1 (0 when unknown).
    pub line: usize,
    /// Column number, starting at 1 (0 when unknown).
    pub column: usize,
}

impl Location {
    /// A location in `file` at `line`:`column`.
    pub fn new(file: &Path, line: usize, column: usize) -> Self {
        Location {
            file: file.to_path_buf(),
            line,
            column,
        }
    }

    /// A whole-file location (no line known).
    pub fn file(file: &Path) -> Self {
        Location::new(file, 0, 0)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        Ok(())
    }
}

/// One problem found while loading or saving a project.
///
/// ```
/// use hive_inventory::{Error, Location};
/// let e = Error::Invalid {
///     location: Location::new("inventory/hive.yml".as_ref(), 4, 15),
///     key_path: "stages.private.provider".into(),
///     message: "unknown provider virtualbox".into(),
///     expected: Some("one of vagrant, aws".into()),
///     suggestion: None,
/// };
/// assert!(e.to_string().starts_with("inventory/hive.yml:4:15: stages.private.provider:"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the project could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A state file in `.hive/` could not be written.
    #[error("{}: cannot write: {source}", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("{location}: invalid YAML: {message}")]
    Syntax {
        /// Where.
        location: Location,
        /// What the parser said.
        message: String,
    },
    /// A value breaks a rule of the inventory.
    #[error("{location}: {key_path}: {message}{}{}",
        expected.as_ref().map(|e| format!(" (valid: {e})")).unwrap_or_default(),
        suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    Invalid {
        /// Where.
        location: Location,
        /// The key path, e.g. `services.web.ports[0]`.
        key_path: String,
        /// What is wrong.
        message: String,
        /// What would be valid.
        expected: Option<String>,
        /// The closest valid name, for misspelled keys.
        suggestion: Option<String>,
    },
}

impl Error {
    /// The location of the problem, if it has one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            Error::Syntax { location, .. } | Error::Invalid { location, .. } => Some(location),
            _ => None,
        }
    }
}

/// Every problem found while loading a project (never empty when returned as an error).
#[derive(Debug, Default)]
pub struct Errors(pub Vec<Error>);

impl Errors {
    /// The problems.
    pub fn iter(&self) -> std::slice::Iter<'_, Error> {
        self.0.iter()
    }

    /// The number of problems.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no problems.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Error> for Errors {
    fn from(e: Error) -> Self {
        Errors(vec![e])
    }
}

impl fmt::Display for Errors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Errors {}

impl<'a> IntoIterator for &'a Errors {
    type Item = &'a Error;
    type IntoIter = std::slice::Iter<'a, Error>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// The closest candidate to a misspelled name, if close enough.
pub(crate) fn did_you_mean<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(name, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
