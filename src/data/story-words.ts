/**
 * The word lists of the story grammar: names, animals, toys, places, feelings, small phrases.
 * Every list is a `choice()` and so is checked prefix-free when this module loads; lists that
 * follow the article "a" hold only words that start with a consonant sound.
 *
 * What it is not: the story structure (story-grammar.ts).
 */
import { choice, oneOf, type Item } from './story-teller.js';

export type Gender = 'girl' | 'boy';

export const GIRL_NAMES = oneOf(
  'Lily', 'Mia', 'Sara', 'Emma', 'Anna', 'Lucy', 'Zoe', 'Ella', 'Ruby', 'Amy', 'Grace',
  'Chloe', 'Rosie', 'Kate', 'Hannah', 'Nora', 'Ivy', 'Jenny', 'Molly', 'Sophie', 'Alice', 'Bea',
  'Clara', 'Dora', 'Gina', 'Hazel', 'Julia', 'Kira', 'Lola', 'Nina', 'Polly', 'Tess',
  'Abby', 'Daisy', 'Elsie', 'Fiona', 'Holly', 'Iris', 'Jade', 'Layla', 'Maya', 'Olive', 'Pearl', 'Quinn', 'Rita', 'Stella', 'Uma', 'Wendy',
);
export const BOY_NAMES = oneOf(
  'Tom', 'Ben', 'Sam', 'Jack', 'Leo', 'Tim', 'Finn', 'Luke', 'Noah', 'Owen', 'Ryan',
  'Adam', 'Eli', 'Hugo', 'Oscar', 'Peter', 'Danny', 'Kevin', 'Billy', 'Jake', 'Carl', 'Dylan',
  'Ethan', 'Felix', 'Gus', 'Otto', 'Ian', 'Joey', 'Kai', 'Louis', 'Nick', 'Victor',
  'Alex', 'Bobby', 'Chris', 'Dean', 'Edgar', 'Frank', 'George', 'Harry', 'Isaac', 'Jonah', 'Lenny', 'Marco', 'Neil', 'Paul', 'Rex', 'Simon',
);
export const PET_NAMES = oneOf(
  'Max', 'Buddy', 'Coco', 'Bella', 'Spot', 'Milo', 'Luna', 'Rocky', 'Pip', 'Sunny', 'Toby', 'Oreo',
  'Patch', 'Biscuit', 'Pepper', 'Ziggy', 'Fluff', 'Gizmo', 'Honey', 'Mochi', 'Nugget', 'Peanut', 'Waffles', 'Zorro',
  'Bingo', 'Cookie', 'Dotty', 'Jelly', 'Kiwi', 'Lucky', 'Pumpkin', 'Whiskers',
);

/** "a {adj} girl" */
export const HERO_ADJ = oneOf(
  'little', 'kind', 'happy', 'curious', 'brave', 'shy', 'playful', 'clever',
  'sweet', 'funny', 'gentle', 'cheerful', 'quiet', 'busy', 'silly', 'tiny',
  'smart', 'polite', 'lively', 'young', 'helpful', 'sleepy', 'dreamy', 'jolly',
  'bright', 'caring', 'cheeky', 'daring', 'friendly', 'lucky', 'merry', 'proud',
);
export const GENDERS = choice<Item & { g: Gender }>([{ text: 'girl', g: 'girl' }, { text: 'boy', g: 'boy' }]);

export const OPEN_TIMES = oneOf('Once upon a time, ', 'Long ago, ', 'Not long ago, ', 'Once, ', 'Many years ago, ', 'A while ago, ');
/** `town`: the frame goes on with "{adj} {town}, there ..." */
export const OPEN_FRAMES = choice<Item & { town?: boolean }>([{ text: 'there was a ' }, { text: 'there lived a ' }, { text: 'in a ', town: true }]);
export const TOWN_ADJ = oneOf('small', 'quiet', 'busy', 'little', 'sunny', 'green', 'snowy', 'happy',
  'windy', 'cozy', 'tiny', 'pretty',
);
export const TOWNS = oneOf('town', 'village', 'city', 'valley',
  'harbor town', 'hill town',
);
export const THERE = oneOf(', there was a ', ', there lived a ');
/** after the hero's first adjective: a second one or none */
export const ADJ_MORE = oneOf(' ', ', ');
export const LIKE_VERBS = oneOf(' loved to ', ' liked to ', ' was happy to ', ' always wanted to ', ' often went to ', ' could not wait to ',
  ' was always ready to ', ' never got tired of trying to ');
export const ACTIVITIES = oneOf(
  'play outside', 'play with blocks', 'draw pictures', 'read books', 'sing songs', 'dance',
  'jump rope', 'ride a bike', 'climb trees', 'paint', 'pick flowers', 'watch the clouds',
  'build things', 'help in the garden', 'splash in puddles', 'look at the stars', 'bake cookies',
  'fly kites', 'swim in the lake', 'tell jokes', 'collect shells', 'go on walks', 'make up songs', 'feed the ducks',
  'play tag', 'watch birds', 'do puzzles', 'plant seeds', 'skip stones', 'hum tunes', 'visit the zoo', 'make sand castles', 'count the stars', 'run races', 'draw with chalk', 'wear funny hats', 'chase bubbles', 'listen to stories', 'help cook dinner', 'roll down hills',
);
export const ACTIVITY_ENDS = oneOf('.', ' every day.', ' all day long.', ' in the sun.', ' after school.', ' with friends.');
/** after the first activity: an end, " and " one more, or ", " two more */
export const ACTIVITY_MORE = choice<Item & { more: number }>([...ACTIVITY_ENDS.items.map((it) => ({ ...it, more: 0 })), { text: ' and ', w: 4, more: 1 }, { text: ', ', w: 2, more: 2 }]);
export const PET_ACT_MORE = choice<Item & { more: number }>([{ text: '.', more: 0 }, { text: ' and ', more: 1 }]);

export const PET_ADJ = oneOf(
  'fluffy', 'small', 'big', 'furry', 'funny', 'friendly', 'fast', 'sleepy',
  'brown', 'white', 'black', 'spotted', 'lazy', 'noisy', 'cuddly', 'gray',
  'tiny', 'playful', 'hungry', 'jumpy', 'chubby', 'golden', 'silly', 'curious',
  'little', 'gentle', 'happy', 'messy', 'shy', 'speedy', 'wiggly', 'clever',
);
export const ANIMALS = oneOf('dog', 'cat', 'bunny', 'puppy', 'kitten', 'duck', 'turtle', 'hamster', 'pony', 'parrot', 'frog', 'lamb',
  'goat', 'chick', 'mouse', 'fox', 'owl', 'hedgehog', 'piglet', 'tortoise',
);
export const PET_ACTS = oneOf(
  'run and jump', 'sleep in the sun', 'chase butterflies', 'play with a ball', 'roll in the grass',
  'hide in boxes', 'splash in the water', 'sit by the window', 'eat tasty snacks', 'dig in the dirt',
  'take long naps', 'follow the wind', 'watch the birds', 'make funny sounds', 'nap on the couch', 'go for walks',
  'greet the mailman', 'chew on sticks', 'play hide and seek', 'catch leaves', 'jump in the leaves', 'sniff the flowers', 'lick faces', 'wag and wiggle',
);

export const WHEN = oneOf(
  'One day, ', 'One sunny day, ', 'One rainy day, ', 'One morning, ', 'One afternoon, ',
  'On a warm day, ', 'On a cold day, ', 'Last summer, ', 'Early one morning, ', 'One windy day, ', 'One evening, ', 'Last spring, ',
);
export const WEATHER = oneOf(
  'The sun was shining', 'The sky was blue', 'The wind was blowing', 'It was very warm',
  'The birds were singing', 'The air was cool', 'The clouds were big and white',
);
export const WEATHER_ENDS = oneOf('.', ' and everything looked pretty.', ' and the flowers were pretty.', ' and the day felt special.');

/** toys: "a {quality} {color} {toy}" */
export const TOY_QUALITY = oneOf(
  'shiny', 'little', 'soft', 'favorite', 'special', 'fuzzy', 'tiny', 'big',
  'small', 'bright', 'fancy', 'wooden', 'striped', 'spotted', 'plastic', 'cute',
  'lovely', 'funny', 'fluffy', 'tall', 'round', 'noisy', 'magic', 'pretty',
);
export const TOY_COLORS = oneOf('red', 'blue', 'green', 'yellow', 'pink', 'purple', 'orange', 'white',
  'black', 'brown', 'silver', 'gray',
);
export const TOYS = oneOf(
  'ball', 'teddy bear', 'doll', 'toy car', 'kite', 'hat', 'book', 'truck',
  'blanket', 'robot', 'drum', 'puzzle', 'train', 'boat', 'whistle', 'yo-yo',
  'crayon', 'scarf', 'marble', 'rubber duck', 'sock', 'mitten', 'shovel', 'pillow',
  'bucket', 'flute', 'rocket', 'jump rope', 'lunch box', 'piano', 'stuffed lion', 'wagon',
);
export const PLACES = oneOf(
  'park', 'garden', 'beach', 'forest', 'farm', 'lake', 'playground', 'zoo',
  'backyard', 'market', 'library', 'school', 'river', 'hill', 'meadow', 'town square',
  'pond', 'bakery', 'fair', 'museum', 'woods', 'circus', 'harbor', 'orchard',
  'attic', 'cave', 'desert', 'island', 'jungle', 'mountain', 'stream', 'village',
);
export const SPOTS = oneOf(
  'under the bed', 'behind the tree', 'in the tall grass', 'under a big rock', 'near the pond',
  'inside a box', 'by the fence', 'under the slide', 'behind the couch', 'in the sandbox',
  'next to the door', 'on the top shelf', 'in the kitchen', 'under a bush', 'behind the shed', 'in a basket',
  'under the table', 'behind a curtain', 'in the car', 'under the swing', 'next to the flowers', 'behind the barn', 'in the closet', 'on the porch',
);

export type Mood = 'sad' | 'happy' | 'scared' | 'proud';
export const FEEL_VERBS = oneOf(' felt ', ' was very ', ' was so ', ' became ');
export const MOODS: Record<Mood, ReturnType<typeof oneOf>> = {
  sad: oneOf('sad', 'upset', 'unhappy', 'worried', 'lonely', 'gloomy', 'grumpy', 'blue'),
  happy: oneOf('happy', 'glad', 'excited', 'joyful', 'cheerful', 'thankful', 'delighted', 'relieved'),
  scared: oneOf('scared', 'afraid', 'nervous', 'frightened', 'shaky', 'worried', 'uneasy', 'tense'),
  proud: oneOf('proud', 'happy', 'strong', 'brave', 'excited', 'tall', 'great', 'amazing'),
};
/** after a mood: an end, or " and " a second mood */
export const MOOD_ENDS = oneOf('.', ' inside.', ' all over.', ' for a moment.', ' that day.', ' right away.', ' deep down.', ' all at once.');
export const MOOD_MORE = oneOf(...MOOD_ENDS.items.map((it) => it.text), ' and ');

export interface ParentItem extends Item {
  /** "Mom" (how the story names the parent) */
  readonly title: string;
  readonly low: string;
  readonly sub: string;
  readonly Sub: string;
  readonly obj: string;
  readonly pos: string;
}
export const PARENTS = choice<ParentItem>([
  { text: 'Mom', title: 'Mom', low: 'mom', sub: 'she', Sub: 'She', obj: 'her', pos: 'her' },
  { text: 'Dad', title: 'Dad', low: 'dad', sub: 'he', Sub: 'He', obj: 'him', pos: 'his' },
  { text: 'Grandma', title: 'Grandma', low: 'grandma', sub: 'she', Sub: 'She', obj: 'her', pos: 'her' },
  { text: 'Grandpa', title: 'Grandpa', low: 'grandpa', sub: 'he', Sub: 'He', obj: 'him', pos: 'his' },
]);
/** the same parents in the same order, lower case ("her mom") */
export const PARENTS_LOW = choice<ParentItem>(PARENTS.items.map((p) => ({ ...p, text: p.low })));

export const MORAL_OPENERS = oneOf('From that day on, ', 'After that day, ', 'Since then, ', 'Now ', 'Ever since, ', 'And so ', 'From then on, ', 'After that, ');
export const LEARNED = oneOf(' learned that ', ' knew that ', ' always remembered that ', ' understood that ', ' found out that ', ' saw that ',
  ' now believed that ', ' told everyone that ');
export const THEN = oneOf('Then ', 'Next, ', 'After that, ', 'Soon ', 'Later, ', 'Right away, ');

export const HOME_VERBS = choice<Item & { family?: boolean }>([{ text: ' lived in a ' }, { text: ' had a home in a ' }, { text: ' lived with ', w: 2, family: true }]);
/** "lived with her {family} in a" */
export const FAMILY = oneOf('mom in a ', 'dad in a ', 'mom and dad in a ', 'grandma in a ', 'grandpa in a ', 'aunt in a ',
  'two brothers in a ', 'two sisters in a ', 'big family in a ', 'baby brother in a ', 'baby sister in a ', 'uncle in a ');
export const HOUSE_ADJ = oneOf('small', 'big', 'cozy', 'little', 'blue', 'yellow', 'white', 'red');
export const HOUSES = oneOf('house', 'cottage', 'farmhouse', 'cabin');
export const NEAR = oneOf(' near the ', ' by the ', ' next to the ', ' close to the ');
/** "at the {adj} park" */
export const PLACE_ADJ = oneOf('big', 'little', 'old', 'busy', 'quiet', 'sunny', 'green', 'new',
  'pretty', 'sandy', 'windy', 'shady', 'noisy', 'peaceful', 'crowded', 'muddy',
);
export const AT = oneOf(' at the ', ' in the ', ' near the ', ' by the ');

/** interjections that may open a line of dialogue, by mood */
export const INTERJECTIONS: Record<'sad' | 'happy' | 'calm', string[]> = {
  sad: ['Oh no, ', 'Oh dear, ', 'Oh, ', 'Uh oh, ', 'Please, ', 'Oh my, ', 'Sniff, ', 'Ah, '],
  happy: ['Wow, ', 'Yay, ', 'Hooray, ', 'Look, ', 'Oh, ', 'Hey, ', 'Yes, ', 'Ha, '],
  calm: ['Well, ', 'Hey, ', 'Listen, ', 'You know, ', 'Okay, ', 'Oh, ', 'Now, ', 'Hmm, '],
};
export const REACTIONS = oneOf(' smiled', ' nodded', ' laughed', ' clapped', ' giggled', ' cheered', ' grinned', ' beamed');
export const REACTION_ENDS = oneOf('.', ' happily.', ' and said thank you.', ' and gave a thumbs up.', ' at everyone.', ' with joy.', ' too.', ' again.');
export const ADVERBS = oneOf(' quickly', ' slowly', ' happily', ' quietly', ' carefully', ' gently', ' bravely', ' proudly');
