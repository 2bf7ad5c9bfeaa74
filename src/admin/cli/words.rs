//! Splitting a runtime API line the way HAProxy's CLI does: commands are
//! separated by `;`, words by spaces or tabs, and a backslash makes the
//! next character literal (`\;` is a semicolon inside a word, `\ ` a
//! space).

/// The commands of one line, each as its words. An empty command (a blank
/// line, or nothing between two `;`) is an empty list: HAProxy answers it
/// with its help text.
pub fn split_line(line: &str) -> Vec<Vec<String>> {
    let mut commands = Vec::new();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            ';' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
                commands.push(std::mem::take(&mut words));
            }
            ' ' | '\t' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    commands.push(words);
    commands
}

#[cfg(test)]
mod tests {
    use super::split_line;

    fn words(line: &str) -> Vec<Vec<&'static str>> {
        split_line(line)
            .into_iter()
            .map(|c| {
                c.into_iter()
                    .map(|w| &*Box::leak(w.into_boxed_str()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn splits_commands_and_words() {
        assert_eq!(words("show info"), vec![vec!["show", "info"]]);
        assert_eq!(
            words("  get weight app/s1 ;show  backend\t"),
            vec![vec!["get", "weight", "app/s1"], vec!["show", "backend"]]
        );
    }

    #[test]
    fn backslash_makes_the_next_character_literal() {
        assert_eq!(
            words(r"get weight a\;b\ c"),
            vec![vec!["get", "weight", "a;b c"]]
        );
        assert_eq!(words(r"x\\"), vec![vec![r"x\"]]);
        // A lone backslash at the end of the line escapes nothing.
        assert_eq!(words("x \\"), vec![vec!["x", ""]]);
    }

    #[test]
    fn empty_commands_stay_visible() {
        assert_eq!(words(""), vec![Vec::<&str>::new()]);
        assert_eq!(
            words("show backend;"),
            vec![vec!["show", "backend"], vec![]]
        );
    }
}
