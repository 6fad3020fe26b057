// Splits a POSIX shell command line into argv without running a shell: whitespace separates
// words; '...' is literal; "..." allows \" \\ \$ \` escapes; a backslash outside quotes escapes the
// next character. Anything that would need a shell (variables, globs, operators) is refused.

export function shellSplit(line) {
  const argv = [];
  let word = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i];
    if (c === ' ' || c === '\t' || c === '\n') {
      if (inWord) argv.push(word);
      word = '';
      inWord = false;
      i++;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end === -1) throw new Error('unterminated single quote');
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      inWord = true;
      for (;;) {
        if (i >= line.length) throw new Error('unterminated double quote');
        const d = line[i];
        if (d === '"') {
          i++;
          break;
        }
        if (d === '$' || d === '`') throw new Error(`shell expansion in command: ${line.slice(i, i + 10)}`);
        if (d === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1])) {
          word += line[i + 1];
          i += 2;
        } else {
          word += d;
          i++;
        }
      }
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new Error('trailing backslash');
      word += line[i + 1];
      inWord = true;
      i += 2;
    } else if ('$`|&;<>()*?['.includes(c) || ('~#'.includes(c) && !inWord)) {
      throw new Error(`shell syntax in command: ${line.slice(i, i + 10)}`);
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) argv.push(word);
  return argv;
}
