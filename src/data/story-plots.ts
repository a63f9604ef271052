/**
 * The seven plots of the story grammar: a lost toy, a new toy to share, a fear, a hurt animal, a
 * hard task, a found thing, an outing. Each tells the middle of a story through a Teller and
 * returns the morals the ending may draw from it.
 *
 * What it is not: the shared phrases (story-phrases.ts) or the story frame (story-grammar.ts).
 */
import { choice, oneOf, type Choice, type Item, type Teller } from './story-teller.js';
import * as W from './story-words.js';
import { both, elder, feel, kid, line, petRef, place, quote, react, sp, subject, type Cast, type Moral } from './story-phrases.js';

export interface Plot extends Item {
  run(t: Teller, c: Cast): Moral;
}

function lostToy(t: Teller, { hero: h, pet }: Cast): Moral {
  t.say(`${h.pos} `);
  t.pick(W.TOY_QUALITY);
  sp(t);
  t.pick(W.TOY_COLORS);
  sp(t);
  const toy = t.pick(W.TOYS).text;
  place(t);
  t.say('. ');
  feel(t, h, 'sad');
  sp(t);
  quote(t, h, [line(`where is my ${toy}`, '?'), line(`I can not find my ${toy}`, '!'), line(`my ${toy} is gone`, '!'),
    line(`I want my ${toy} back`), line(`has anyone seen my ${toy}`, '?'), line(`I miss my ${toy}`)], 'sad');
  t.say('\n');
  petRef(t, pet, true);
  t.pick(oneOf(' wanted to help', ' came to help', ' ran over to help', ' saw that something was wrong', ' looked up', ' came running', ' jumped up', ' sat up'));
  t.pick(W.ADVERBS);
  t.say('. ');
  both(t, h.name, pet.name);
  t.pick(oneOf(' looked ', ' searched ', ' checked ', ' peeked ', ' hunted ', ' dug around '));
  const first = t.pick(W.SPOTS);
  t.pick(oneOf(`, but the ${toy} was not there.`, ', but they did not find it.', ', but it was empty.', ', but there was only dust.', ', but they found only a sock.', ', but they found only leaves.'));
  sp(t);
  t.pick(oneOf('Then they looked ', 'Next, they looked ', 'They also looked ', 'So they searched ', 'After that, they checked ', 'They even looked '));
  const second = t.pick(W.SPOTS, first);
  t.say('. ');
  t.pick(oneOf('At last, ', 'Finally, ', 'Then, ', 'Suddenly, ', 'All at once, ', 'Just then, '));
  petRef(t, pet, false);
  t.pick(oneOf(' found the ', ' saw the ', ' spotted the ', ' sniffed out the ', ' pulled out the ', ' noticed the '));
  t.say(`${toy} `);
  t.pick(W.SPOTS, second);
  t.say('! ');
  feel(t, h, 'happy');
  sp(t);
  quote(t, h, [line(`thank you, ${pet.name}`, '!'), line(`you found it, ${pet.name}`, '!'), line(`you are the best, ${pet.name}`, '!'),
    line(`good job, ${pet.name}`), line(`I am so glad to have you, ${pet.name}`), line(`how did you find it`, '?')], 'happy');
  sp(t);
  subject(t, h, true);
  t.pick(oneOf(` gave ${pet.name} a big hug.`, ` hugged ${pet.name} tight.`, ` gave ${pet.name} a treat.`, ` patted ${pet.name} on the head.`));
  return {
    actions: [`always kept ${h.pos} ${toy} in a safe place`, `put ${h.pos} toys away after playing`, `took good care of ${h.pos} things`,
      `never left ${h.pos} ${toy} behind`, `played with ${pet.name} every day`,
      `smiled at ${pet.name} every morning`, `checked on ${h.pos} toys before bed`, 'helped friends find lost things'],
    lessons: ['friends help each other', 'it is good to ask for help', 'a good friend is always there for you',
      'taking care of your things is important', 'pets can be the best friends',
      'you should keep your things safe', 'good friends never give up', 'looking together is better than alone'],
  };
}

function newToy(t: Teller, { hero: h }: Cast): Moral {
  t.pick(W.TOY_QUALITY);
  sp(t);
  t.pick(W.TOY_COLORS);
  sp(t);
  const toy = t.pick(W.TOYS).text;
  t.say('. ');
  t.pick(oneOf('It was ', `The ${toy} was `, `To ${h.obj} it was `));
  t.pick(oneOf('very shiny.', 'so much fun.', 'the best toy ever.', 'bright and new.', 'perfect.', 'a gift from ' + h.pos + ' aunt.'));
  sp(t);
  t.pick(oneOf('Then a ', 'Soon a ', 'Later, a ', 'That day, a ', 'After lunch, a ', 'Just then, a '));
  const g = t.pick(W.GENDERS);
  t.say(' named ');
  const names = g.g === 'girl' ? W.GIRL_NAMES : W.BOY_NAMES;
  const f = kid(t.pick(names, names.items.find((n) => n.text === h.name)).text, g.g);
  t.pick(oneOf(' came to play', ' came over', ` saw the ${toy}`, ' walked by', ' ran up', ' was playing'));
  place(t);
  t.say('. ');
  quote(t, f, [line(`can I play with your ${toy}`, '?'), line('can I have a turn', '?'), line(`your ${toy} is so nice`, '!'),
    line(`I want to play with the ${toy} too`), line(`may I hold it`, '?'), line(`I never had a ${toy}`)], 'happy');
  sp(t);
  quote(t, h, [line('no, it is mine', '!'), line('no, I want to play with it'), line('go away', '!'), line('you can not have it'),
    line('it is only for me'), line('maybe later', '!')], 'calm');
  sp(t);
  feel(t, f, 'sad');
  t.say('\n');
  const p = elder(t.pick(W.PARENTS));
  t.pick(oneOf(' saw this', ' heard this', ' came over', ' was watching', ' walked up', ' noticed'));
  t.pick(W.ADVERBS);
  t.say('. ');
  quote(t, p, [line(`${h.name}, it is nice to share`), line('sharing makes everyone happy', '!'), line(`can you share with ${f.name}`, '?'),
    line('friends share their toys'), line(`how would you feel if you were ${f.name}`, '?'), line('you can take turns')], 'calm');
  sp(t);
  subject(t, h, true);
  t.pick(oneOf(' thought about it.', ` looked at ${f.name}.`, ' felt bad.', ' was quiet for a moment.', ' looked down.', ' took a deep breath.'));
  sp(t);
  subject(t, h, true);
  t.pick(oneOf(` gave the ${toy} to ${f.name}.`, ` shared the ${toy} with ${f.name}.`, ` let ${f.name} have a turn.`, ` handed ${f.name} the ${toy}.`));
  sp(t);
  quote(t, f, [line('thank you', '!'), line('you are so kind', '!'), line('this is fun', '!'), line('let us play together'),
    line(`you are a good friend, ${h.name}`), line('do you want to play again tomorrow', '?')], 'happy');
  sp(t);
  react(t, h);
  sp(t);
  both(t, h.name, f.name);
  t.pick(oneOf(' played together', ` took turns with the ${toy}`, ' had so much fun', ' laughed and played', ' ran and played', ' made up games'));
  t.pick(oneOf(' all day.', ' until dinner.', ' all afternoon.', ' until the sun went down.', ' for hours.', ' in the yard.'));
  return {
    actions: [`always shared ${h.pos} toys`, 'was happy to take turns', `played nicely with ${f.name}`, 'asked other kids to play', `let friends try ${h.pos} things`,
      'made new friends at the park', `invited ${f.name} over often`, 'never grabbed toys from others'],
    lessons: ['sharing is caring', 'sharing makes everyone happy', 'playing together is more fun than playing alone',
      'being kind is better than being selfish', 'a friend is better than a toy',
      'sharing brings friends', 'taking turns is fair', 'giving feels as good as getting'],
  };
}

interface Fear extends Item {
  act: string;
}
const FEARS = choice<Fear>([
  { text: 'the dark', act: 'sleep with the light off' },
  { text: 'the loud thunder', act: 'watch the storm from the window' },
  { text: 'the big slide', act: 'go down the slide' },
  { text: 'the deep water', act: 'swim in the water' },
  { text: 'the tall tree', act: 'climb the tree' },
  { text: 'the big waves', act: 'play in the waves' },
  { text: 'the noisy vacuum', act: 'stand next to the vacuum' },
  { text: 'the first day of school', act: 'walk into the classroom' },
]);

function fear(t: Teller, { hero: h, pet }: Cast): Moral {
  const f = t.pick(FEARS);
  t.say('. ');
  feel(t, h, 'scared');
  sp(t);
  quote(t, h, [line(`I do not like ${f.text}`), line('please help me', '!'), line('what if something bad happens', '?'),
    line(`I am scared of ${f.text}`), line('I want to go home', '!'), line('can you stay with me', '?')], 'sad');
  t.say('\n');
  const p = elder(t.pick(W.PARENTS));
  t.pick(oneOf(` came and sat next to ${h.obj}`, ` gave ${h.obj} a warm hug`, ` held ${h.pos} hand`, ` knelt down next to ${h.obj}`, ` smiled at ${h.obj}`, ` came over`));
  t.pick(W.ADVERBS);
  t.say('. ');
  quote(t, p, [line('do not be afraid'), line('I am here with you'), line('you are braver than you think', '!'),
    line('do you want to try together', '?'), line('take a deep breath'), line('being scared is okay')], 'calm');
  sp(t);
  petRef(t, pet, true);
  t.pick(oneOf(' stayed close too.', ` sat next to ${h.name}.`, ' looked up at them.', ' wagged and waited.', ' came along.', ' gave a happy yip.'));
  sp(t);
  t.pick(oneOf('Slowly, ', 'Little by little, ', 'Then ', 'At last, ', 'After a while, ', 'The next day, '));
  subject(t, h, false);
  t.pick(oneOf(' tried to ', ' decided to ', ' was brave enough to ', ' found a way to ', ' chose to ', ' got ready to '));
  t.say(`${f.act}. `);
  t.pick(oneOf('It was not so scary after all.', 'It was fun!', 'Nothing bad happened.', `It was easier than ${h.sub} thought.`, 'It was even a little exciting.'));
  sp(t);
  feel(t, h, 'proud');
  sp(t);
  quote(t, h, [line('I did it', '!'), line('I am not scared anymore', '!'), line('that was fun'), line('can we do it again', '?'),
    line('I was brave', '!'), line(`thank you, ${p.name}`)], 'happy');
  sp(t);
  react(t, p);
  return {
    actions: [`was never scared of ${f.text} again`, 'felt brave when things were hard', 'helped other kids who were scared',
      'tried new things', `told ${p.name} when ${h.sub} was scared`,
      'asked for help when things were scary', 'was proud of being brave', 'took a deep breath when scared'],
    lessons: ['being brave is good', 'it is okay to be scared sometimes', 'trying new things can be fun', 'family helps you feel safe',
      'fear gets smaller when you face it',
      'brave means trying even when scared', 'you are stronger than you think', 'scary things can become fun'],
  };
}

interface Critter extends Item {
  hurt: Choice<Item>;
  leave: string;
}
const CRITTERS = choice<Critter>([
  { text: 'bird', hurt: oneOf(' with a hurt wing', ' that could not fly'), leave: 'flew up into the sky' },
  { text: 'squirrel', hurt: oneOf(' with a hurt leg', ' that could not climb'), leave: 'ran back up its tree' },
  { text: 'kitten', hurt: oneOf(' with a hurt paw', ' that was cold and wet'), leave: 'went home to its mother' },
  { text: 'butterfly', hurt: oneOf(' with a torn wing', ' that was too tired to fly'), leave: 'fluttered away over the flowers' },
  { text: 'hedgehog', hurt: oneOf(' with a hurt foot', ' that was lost'), leave: 'walked back into the bushes' },
  { text: 'duckling', hurt: oneOf(' with a hurt leg', ' that lost its family'), leave: 'swam back to its family' },
]);
const CARE = oneOf('gave it some water', 'made it a soft bed', 'put a little bandage on it', 'gave it some food', 'kept it warm',
  'sang it a song', 'found it a safe box', 'brushed it gently');

function hurtAnimal(t: Teller, { hero: h, pet }: Cast): Moral {
  t.pick(oneOf('little ', 'tiny ', 'small ', 'poor '));
  const c = t.pick(CRITTERS);
  t.pick(c.hurt);
  place(t);
  t.say('. ');
  subject(t, h, true);
  t.pick(oneOf(' felt sorry for it.', ' wanted to help it.', ' knelt down next to it.', ' picked it up gently.', ' ran to it.', ' looked at it closely.'));
  sp(t);
  quote(t, h, [line('poor thing'), line('do not worry, I will help you', '!'), line('are you okay', '?'),
    line(`I will take care of you, little ${c.text}`), line('you are safe now'), line('who hurt you', '?')], 'sad');
  t.say('\n');
  subject(t, h, true);
  sp(t);
  const first = t.pick(CARE);
  t.say('. ');
  t.pick(W.THEN);
  subject(t, h, false);
  sp(t);
  t.pick(CARE, first);
  t.say('. ');
  petRef(t, pet, true);
  t.pick(oneOf(' watched and waited', ' stayed close to it', ' sat next to it', ' kept it company', ' sniffed it', ' lay down nearby'));
  t.pick(W.ADVERBS);
  t.say('. ');
  t.pick(oneOf('After a few days, the ', 'Soon the ', 'Day by day, the ', 'The next morning, the ', 'After a week, the ', 'Before long, the '));
  t.say(c.text);
  t.pick(oneOf(' felt better.', ' got better.', ' was strong again.', ' was well again.'));
  t.say(` It ${c.leave}. `);
  feel(t, h, 'happy');
  sp(t);
  quote(t, h, [line(`goodbye, little ${c.text}`, '!'), line('be safe', '!'), line('come back soon', '!'), line('I will miss you'),
    line('I am glad you are well'), line('will you visit me', '?')], 'happy');
  return {
    actions: ['was always kind to animals', `helped every animal ${h.sub} met`, 'looked out for animals in need',
      `told ${h.pos} friends how to help animals`, 'kept a little first aid box',
      'put out water for the birds', 'was gentle with every pet', 'read books about animals'],
    lessons: ['being kind is important', 'helping others feels good', 'even small animals need love',
      'a little help can make a big difference', 'every animal matters',
      'kindness makes the world better', 'animals feel pain too', 'caring is a kind of magic'],
  };
}

interface Project extends Item {
  thing: string;
  fail: string;
  win: string;
}
const PROJECTS = choice<Project>([
  { text: 'build a sand castle', thing: 'sand castle', fail: 'fell down', win: 'stood tall' },
  { text: 'bake a cake', thing: 'cake', fail: 'came out flat', win: 'was soft and yummy' },
  { text: 'fly a kite', thing: 'kite', fail: 'fell to the ground', win: 'flew high in the sky' },
  { text: 'make a paper boat', thing: 'boat', fail: 'sank in the water', win: 'floated on the water' },
  { text: 'stack a tall tower', thing: 'tower', fail: 'tipped over', win: 'did not fall' },
  { text: 'plant a flower', thing: 'flower', fail: 'did not grow', win: 'grew big and pretty' },
  { text: 'draw a horse', thing: 'horse', fail: 'looked like a blob', win: 'looked just right' },
  { text: 'tie a shoe', thing: 'bow', fail: 'came undone', win: 'stayed tight' },
]);

function hardTask(t: Teller, { hero: h, pet }: Cast): Moral {
  const pr = t.pick(PROJECTS);
  place(t);
  t.say('. ');
  subject(t, h, true);
  t.pick(oneOf(' tried, but the ', ' tried hard, but the ', ' tried and tried, but the ', ' did ' + h.pos + ' best, but the ', ' started, but the ', ' worked hard, but the '));
  t.say(`${pr.thing} ${pr.fail}. `);
  feel(t, h, 'sad');
  sp(t);
  quote(t, h, [line('I can not do it'), line('this is too hard', '!'), line('why does it not work', '?'), line('I give up'),
    line('I will never get it right', '!'), line('what am I doing wrong', '?')], 'sad');
  t.say('\n');
  const p = elder(t.pick(W.PARENTS));
  t.pick(oneOf(' smiled', ` sat down next to ${h.obj}`, ` saw ${h.obj} and came over`, ' came to look', ' walked over', ' gave a hug'));
  t.pick(W.ADVERBS);
  t.say('. ');
  quote(t, p, [line('try again', '!'), line('do not give up', '!'), line('you can do it'), line('what if you go slowly', '?'),
    line('everyone makes mistakes'), line('I will show you a trick')], 'calm');
  sp(t);
  t.pick(oneOf('So ', 'This time, ', 'The next day, ', 'After a snack, ', 'Later, ', 'After a rest, '));
  subject(t, h, false);
  t.pick(oneOf(' tried again.', ' tried one more time.', ' went very slowly.', ' did it step by step.', ' listened and tried again.', ' was careful.'));
  t.say(` The ${pr.thing} ${pr.win}! `);
  feel(t, h, 'proud');
  sp(t);
  quote(t, h, [line('I did it', '!'), line(`look at my ${pr.thing}`, '!'), line('it worked', '!'), line('trying again was a good idea'),
    line(`thank you, ${p.name}`), line('can I make another one', '?')], 'happy');
  sp(t);
  petRef(t, pet, true);
  t.pick(oneOf(' jumped up and down.', ' ran around in circles.', ' looked very happy too.', ' barked with joy.', ' did a little dance.'));
  return {
    actions: ['never gave up', 'always tried again', 'practiced every day', 'took hard things step by step', `helped friends who wanted to ${pr.text}`,
      'kept trying when things were hard', 'asked for tips when stuck', 'smiled at mistakes'],
    lessons: ['practice makes things better', 'you should never give up', 'mistakes help you learn',
      'hard things get easier when you keep trying', 'patience pays off',
      'trying is how you grow', 'slow and steady wins', 'every try makes you better'],
  };
}

const FINDS = oneOf('shiny key', 'little box', 'old map', 'lost wallet', 'golden ring', 'pretty scarf', 'small bag of coins', 'toy boat');
const OWNERS = oneOf('a kind old man', 'the girl next door', 'the lady from the shop', 'the teacher', 'a little boy', 'the mailman');
const GIFTS = oneOf('a big cookie', 'a red balloon', 'a shiny sticker', 'a warm hug', 'a little toy', 'a jar of honey', 'a new book', 'a bunch of flowers');

function foundThing(t: Teller, { hero: h, pet }: Cast): Moral {
  const thing = t.pick(FINDS).text;
  place(t);
  t.say('. ');
  subject(t, h, true);
  t.pick(oneOf(' wondered who it belonged to.', ' looked at it closely.', ' picked it up.', ' turned it over in ' + h.pos + ' hands.', ' held it up high.', ' gasped.'));
  sp(t);
  quote(t, h, [line('whose is this', '?'), line('someone must be looking for it'), line('I should give it back'),
    line(`what a nice ${thing}`, '!'), line('where did it come from', '?'), line('someone lost this')], 'happy');
  sp(t);
  petRef(t, pet, true);
  t.pick(oneOf(' sniffed it', ' looked at it too', ' wagged happily', ' tilted its head', ' jumped around', ' came closer'));
  t.pick(W.ADVERBS);
  t.say('.\n');
  subject(t, h, true);
  t.pick(oneOf(' took it to ', ' showed it to ', ' ran home to ', ' brought it to '));
  const p = elder(t.pick(W.PARENTS));
  t.say('. ');
  quote(t, p, [line('let us find the owner'), line('you did the right thing', '!'), line('who do you think lost it', '?'),
    line('someone will be so happy'), line('we should ask around'), line('good thinking', '!')], 'calm');
  sp(t);
  t.pick(oneOf('They asked around, and soon they found out that it belonged to ', 'Soon they learned that it belonged to ', 'It belonged to ', 'They found that it was from '));
  t.pick(OWNERS);
  t.say('. ');
  t.pick(oneOf('The owner was so happy and gave ', 'To say thank you, the owner gave ', 'The owner smiled and gave '));
  t.say(`${h.name} `);
  t.pick(GIFTS);
  t.say('. ');
  feel(t, h, 'happy');
  return {
    actions: [`always gave back things that were not ${h.hers}`, 'helped people find what they lost', 'tried to be honest',
      'looked for owners of lost things', 'did the right thing',
      'told the truth', `returned what was not ${h.hers}`, 'helped the neighbors'],
    lessons: ['honesty is important', 'giving things back is the right thing to do', 'being honest makes people happy',
      'doing the right thing feels good', 'kindness comes back to you',
      'the truth is always best', 'a kind deed is its own reward', 'good things happen to honest people'],
  };
}

const SHINIES = oneOf('pretty butterfly', 'red balloon', 'big puddle', 'funny duck', 'little frog', 'fluffy cloud', 'bright kite', 'shiny stone');

function outing(t: Teller, { hero: h }: Cast): Moral {
  t.pick(W.PLACE_ADJ);
  sp(t);
  t.pick(W.PLACES);
  t.say(` with ${h.pos} `);
  const p = elder(t.pick(W.PARENTS_LOW));
  t.say('. ');
  t.pick(W.WEATHER);
  t.pick(W.WEATHER_ENDS);
  sp(t);
  quote(t, p, [line('stay close to me'), line('do not run away', '!'), line('hold my hand, please'), line('will you stay with me', '?'),
    line('it is busy here'), line('do you see me', '?')], 'calm');
  sp(t);
  t.pick(oneOf('But then ', 'But soon ', 'Suddenly, ', 'A moment later, ', 'All of a sudden, ', 'Then '));
  subject(t, h, false);
  t.pick(oneOf(' saw a ', ' spotted a ', ' noticed a ', ' heard a '));
  t.pick(SHINIES);
  t.pick(oneOf(' and ran after it.', ' and followed it.', ' and forgot to listen.', ' and walked away to look.', ' and went to see it.', ' and chased it.'));
  t.say('\n');
  t.pick(oneOf('Soon ', 'After a while, ', 'Before long, ', 'Then '));
  subject(t, h, false);
  t.say(` could not see ${h.pos} ${p.name.toLowerCase()}. `);
  feel(t, h, 'scared');
  sp(t);
  quote(t, h, [line(`${p.name}, where are you`, '?'), line('help', '!'), line(`I want my ${p.name.toLowerCase()}`, '!'), line('I am lost'),
    line('where did everyone go', '?')], 'sad');
  sp(t);
  t.pick(oneOf('Then ', 'Just then, ', 'Luckily, ', 'At last, '));
  t.say(`${p.name} `);
  t.pick(oneOf(`heard ${h.obj} and came running.`, `found ${h.obj} by the big tree.`, 'called out and waved.', `saw ${h.obj} in the crowd.`));
  sp(t);
  quote(t, p, [line('I was so worried', '!'), line('please stay close next time'), line('I am so glad you are safe', '!'),
    line('are you okay', '?'), line('there you are', '!')], 'calm');
  sp(t);
  quote(t, h, [line('I am sorry'), line('I will listen next time'), line('I will stay close', '!'), line('I was scared', '!')], 'sad');
  return {
    actions: [`always stayed close to ${h.pos} ${p.name.toLowerCase()}`, 'listened when grown-ups said to stay close',
      'held hands in busy places', 'looked around before running off',
      'walked next to the grown-ups', 'looked for a helper when lost', 'remembered the rules'],
    lessons: ['it is important to listen to your parents', 'staying close keeps you safe', 'listening can keep you out of trouble',
      'grown-ups give rules to keep us safe',
      'rules help keep us safe', 'it is smart to stay close', 'a helper is never far away'],
  };
}

/** picked right after the hero is named: the plot shows in these words */
export const PLOTS = choice<Plot>([
  { text: ' lost ', run: lostToy },
  { text: ' got a new ', run: newToy },
  { text: ' was scared of ', run: fear },
  { text: ' saw a ', run: hurtAnimal },
  { text: ' wanted to ', run: hardTask },
  { text: ' found a ', run: foundThing },
  { text: ' went to the ', run: outing },
]);
