/**
 * Ghost Attention constraints: each kind's checker on hand-written answers, `apply` making a
 * reference satisfy it (and leaving what it says intact), the terse rewrites, compatibility of
 * pairs, and the 20-turn GAtt dialogs whose every turn can be graded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyConstraints, checkConstraint, compatible, CONSTRAINT_KINDS, constraintText, parseConstraints, randomConstraint, randomConstraints,
  UNAPPLIABLE_KINDS, type ConstraintSpec,
} from '../src/world/constraints.js';
import { gattDialog, gattMessages } from '../src/world/gatt.js';
import { graderFor } from '../src/world/grade.js';
import { Rng } from '../src/util/rng.js';

const C = {
  caps: { kind: 'caps' }, lowercase: { kind: 'lowercase' }, exclaim: { kind: 'exclaim' }, meow: { kind: 'meow' },
  max5: { kind: 'max_words', n: 5 }, colour: { kind: 'colour' }, tom: { kind: 'character', name: 'Captain Tom', greeting: 'Ahoy!' },
  digits: { kind: 'no_digits' }, mia: { kind: 'call_name', name: 'Mia' }, one: { kind: 'one_sentence' },
} satisfies Record<string, ConstraintSpec>;

test('each constraint kind checks one answer', () => {
  const cases: [ConstraintSpec, string, number][] = [
    [C.caps, 'IT IS 7.', 1], [C.caps, 'It is 7.', 0], [C.caps, '7', 0],
    [C.lowercase, 'it is seven.', 1], [C.lowercase, 'It is seven.', 0],
    [C.exclaim, 'Hooray!', 1], [C.exclaim, 'Hooray!"', 1], [C.exclaim, 'Hooray.', 0],
    [C.meow, 'Meow. It is 7.', 1], [C.meow, 'meow! it is 7', 1], [C.meow, 'It is 7. Meow.', 0],
    [C.max5, 'One two three four five.', 1], [C.max5, 'K-I-T-T-E-N', 1], [C.max5, 'one two three four five six seven', 0.6], [C.max5, 'a b c d e f g h i j k', 0],
    [C.colour, 'The sky is blue.', 1], [C.colour, 'It is 7.', 0],
    [C.tom, 'Ahoy! It is 7.', 1], [C.tom, 'It is 7, ahoy!', 0],
    [C.digits, 'seven', 1], [C.digits, '7', 0],
    [C.mia, 'Mia, it is 7.', 1], [C.mia, 'It is 7.', 0],
    [C.one, 'It is 7.', 1], [C.one, 'It is 7. Yes.', 0.5],
    [C.caps, '', 0],
  ];
  const bad = cases.filter(([c, a, want]) => checkConstraint(c, a) !== want).map(([c, a, want]) => ({ c: c.kind, a, want, got: checkConstraint(c, a) }));
  assert.deepEqual(bad, []);
});

test('apply makes an answer satisfy each appliable kind; "colour" cannot be applied', () => {
  assert.deepEqual(UNAPPLIABLE_KINDS, ['colour']);
  const answers = ['It is 7.', 'There are 12 letters in "kitten".', '1. Dog\n2. Cat', 'Pip was a cat with a red ball. She played with it all day.'];
  for (const kind of CONSTRAINT_KINDS.filter((k) => !UNAPPLIABLE_KINDS.includes(k))) {
    const c = randomConstraint(new Rng(1), kind);
    for (const a of answers) {
      const out = applyConstraints([c], a);
      assert.ok(out !== null && checkConstraint(c, out) === 1, `${kind} on ${JSON.stringify(a)} → ${JSON.stringify(out)}`);
    }
  }
  assert.equal(applyConstraints([C.caps], 'It is 7.'), 'IT IS 7.');
  assert.equal(applyConstraints([C.exclaim], 'It is 7.'), 'It is 7!');
  assert.equal(applyConstraints([C.meow, C.exclaim], 'It is 7.'), 'Meow. It is 7!');
  assert.equal(applyConstraints([C.max5], 'One two three four five six seven.'), 'One two three four five');
  assert.equal(applyConstraints([C.digits, C.mia], '3 plus 4 is 7.'), 'Mia, three plus four is seven.');
  assert.equal(applyConstraints([C.tom, C.caps], 'It is 7.'), 'AHOY! IT IS 7.');
  // an unappliable kind: null unless the answer already satisfies it
  assert.equal(applyConstraints([C.colour], 'It is 7.'), null);
  assert.equal(applyConstraints([C.colour, C.caps], 'It is red.'), 'IT IS RED.');
});

test('full and terse instruction texts; conflicting pairs are never drawn together', () => {
  assert.equal(constraintText([C.tom], false), 'Always act as Captain Tom: start every answer with "Ahoy!"');
  assert.equal(constraintText([C.tom], true), 'Figure: Captain Tom ("Ahoy!")');
  assert.equal(constraintText([C.caps, C.max5], true), 'Style: ALL CAPS; Length: at most 5 words');
  for (const k of CONSTRAINT_KINDS) assert.notEqual(constraintText([randomConstraint(new Rng(2), k)], true), constraintText([randomConstraint(new Rng(2), k)], false));
  assert.ok(!compatible('caps', 'lowercase') && !compatible('meow', 'character') && compatible('caps', 'exclaim'));
  const rng = new Rng(3);
  for (let i = 0; i < 300; i++) {
    const cs = randomConstraints(rng, 1);
    assert.equal(cs.length, 2);
    assert.ok(compatible(cs[0]!.kind, cs[1]!.kind), JSON.stringify(cs));
  }
  assert.throws(() => parseConstraints([{ kind: 'rhyme' }], 'x.jsonl:4'), /x\.jsonl:4: meta\.constraints: expected a kind among caps, .* but found "rhyme"/);
});

test('GAtt dialogs: 20 gradable turns; rewritten references satisfy the instruction, raw ones are marked down', () => {
  const d = gattDialog(1, 0, { turns: 20, constraints: [C.caps], terse: true });
  assert.equal(d.turns.length, 20);
  assert.equal(d.system, 'Style: ALL CAPS');
  let answered = 0;
  for (const t of d.turns) {
    assert.deepEqual(t.meta.constraints, [C.caps]);
    const grade = graderFor(t.meta);
    if (t.answer !== null) {
      answered++;
      assert.ok(grade(t.answer).score >= 0.99, `${t.user} → ${t.answer}`);
      assert.equal(grade(t.answer).parts?.['constraint'], 1);
    }
    assert.ok(grade(t.reference.toLowerCase()).score <= 0.5, `ignoring the instruction must cost: ${t.reference}`);
  }
  assert.ok(answered >= 15, `only ${answered} of 20 references could be rewritten`);
  const msgs = gattMessages(d);
  assert.equal(msgs[0]!.role, 'system');
  assert.deepEqual(gattMessages(d, ['A']).map((m) => m.role), ['system', 'user', 'assistant', 'user']);
  // seeded: same index, same dialog; another index, another dialog
  assert.deepEqual(gattDialog(1, 0, { turns: 20, constraints: [C.caps], terse: true }), d);
  assert.notDeepEqual(gattDialog(1, 1, { turns: 20, constraints: [C.caps], terse: true }).turns.map((t) => t.user), d.turns.map((t) => t.user));
  const r = gattDialog(5, 3);
  assert.equal(r.turns.length, 20);
  assert.ok(r.constraints.length >= 1 && r.constraints.length <= 2);
});
