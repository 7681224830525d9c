import { describe, expect, test } from '@jest/globals';
import { O } from '../../src/agent/model.js';
import { compileGlob } from '../../src/agent/replay/glob.js';
import { decide, parsePolicy } from '../../src/agent/replay/policy.js';
import { fileOf } from './support.js';

const log = fileOf('regular', '/var/log/app/app.log', O.WRONLY | O.APPEND, 0, { type: 'regular', size: 0 });
const sock = fileOf('socket', 'socket:[1]', O.RDWR, 0, {
  type: 'socket',
  family: 1,
  sockType: 1,
  protocol: 0,
  state: 'connected',
  sockIno: 1,
});

describe('restore policy', () => {
  test('globs: * and ? stay in one component, ** crosses them, the rest is literal', () => {
    expect(compileGlob('/var/log/*.log').test('/var/log/a.log')).toBe(true);
    expect(compileGlob('/var/log/*.log').test('/var/log/app/a.log')).toBe(false);
    expect(compileGlob('/var/**.log').test('/var/log/app/a.log')).toBe(true);
    expect(compileGlob('/tmp/f?').test('/tmp/f1')).toBe(true);
    expect(compileGlob('/a+b/(c)').test('/a+b/(c)')).toBe(true);
  });

  test('the first rule whose matchers all match decides; no rule restores as is', () => {
    const policy = parsePolicy(`
rules:
  - {fd: 9, action: skip}
  - {type: socket, action: devnull}
  - {path: /var/log/**, action: remap, from: /var/log, to: /srv/logs, allowSizeChange: true}
`);
    expect(decide(policy, 9, log)).toEqual({
      action: 'skip',
      allowSizeChange: false,
      allowFileChange: false,
      path: log.path,
    });
    expect(decide(policy, 3, sock).action).toBe('devnull');
    expect(decide(policy, 3, log)).toEqual({
      action: 'remap',
      allowSizeChange: true,
      allowFileChange: false,
      path: '/srv/logs/app/app.log',
    });
    expect(decide(parsePolicy('rules: []'), 3, log)).toEqual({
      action: 'fail',
      allowSizeChange: false,
      allowFileChange: false,
      path: log.path,
    });
  });

  test('cloexec matches the fd bit: skipping close-on-exec fds keeps the inherited ones', () => {
    const policy = parsePolicy('rules: [{cloexec: true, action: skip}]');
    expect(decide(policy, 3, log, true).action).toBe('skip');
    expect(decide(policy, 3, log, false).action).toBe('fail');
    expect(() => parsePolicy('rules: [{cloexec: 1}]')).toThrow(
      'policy rule 1: cloexec must be true or false',
    );
  });

  test('a remap rule only matches paths under its prefix', () => {
    const policy = parsePolicy('{"rules": [{"action": "remap", "from": "/var/lo", "to": "/x"}]}');
    expect(decide(policy, 3, log).action).toBe('fail');
  });

  test('every malformed field is named', () => {
    expect(() => parsePolicy('rules: [{fd: 1, colour: red}]')).toThrow(
      'policy rule 1: unknown field "colour"',
    );
    expect(() => parsePolicy('rules: [{action: skip, from: /a}]')).toThrow(
      'policy rule 1: `from`/`to` belong to action remap only',
    );
    expect(() => parsePolicy('rules: [{allowSizeChange: "yes"}]')).toThrow(
      'policy rule 1: allowSizeChange must be true or false',
    );
    expect(() => parsePolicy('rules: [{path: ""}]')).toThrow('policy rule 1: path must be a non-empty glob');
    expect(() => parsePolicy('rules: [7]')).toThrow('policy rule 1: must be an object');
    expect(() => parsePolicy('rules: []\nextra: 1')).toThrow('policy file: unknown field "extra"');
    expect(() => parsePolicy('rules: [')).toThrow(/^policy file: not YAML\/JSON: /);
  });
});
