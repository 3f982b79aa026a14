"""Sentence templates of the synthetic story generator, grouped into plots.

A plot is a tuple of paragraphs, a paragraph a tuple of beats, a beat a tuple of alternative
templates; the generator picks one template per beat. An empty template makes a beat optional.
Templates are `str.format_map` strings over the slots built in `scratchlm.data.synth`:

- hero: hero, He/he, him, His/his, self, hero_desc ("a curious little fox"), a_home, trait, like,
  like2; friend: friend, Fhe/fhe, fhim, Fhis/fhis; grown-up: parent, Phe/phe, phim, phis
- things: obj, a_obj (first mention, with adjectives), use ("fly it high in the sky")
- animal: animal, animals, an_animal, sound, move; place: place, the_place, at_place, sight1-3
- colour: time, sky, act, act2, food, glad, glad2, sad, scared, num

Every plot names the hero, the object, the animal and the place in beats that cannot be
skipped; tests/test_synth.py checks it.
"""

Beat = tuple[str, ...]
Paragraph = tuple[Beat, ...]

OPEN: Beat = (
    "Once upon a time, there was {hero_desc} named {hero}.",
    "Once there was {hero_desc} called {hero}.",
    "There was once {hero_desc} named {hero} who lived in {a_home}.",
    "{hero} was {hero_desc} who lived in {a_home}.",
    "Not long ago, in {a_home}, there lived {hero_desc} named {hero}.",
    "{hero} was {hero_desc}, and {he} was {trait2}.",
    "Once upon a time, {hero_desc} named {hero} lived with {his} {parent} in {a_home}.",
    "In {a_home} lived {hero_desc}. {His} name was {hero}.",
    "A long time ago, in {a_home}, lived {hero_desc} named {hero}.",
    "{hero} was {hero_desc}. Everyone on {his} street knew {him}, because {he} was {trait2}.",
    "This is a story about {hero}, {hero_desc} who lived in {a_home}.",
)

ABOUT: Beat = (
    "{He} was {trait}.",
    "{He} loved to {like}.",
    "{He} loved to {like} and {like2}.",
    "More than anything, {he} liked to {like}.",
    "Every day, {he} liked to {like}.",
    "{He} was {trait}, and {he} loved to {like}.",
    "{hero} liked to {like}, but {he} did not like to {like2}.",
    "{His} favorite thing to do was to {like}.",
    "{He} liked to {like} with {his} {parent}.",
    "When {he} was not busy, {he} liked to {like}.",
    "",
    "",
)

SCENE: Beat = (
    "{sky} {hero} could see {sight1} and {sight2} all around.",
    "The {place} was full of {sight1} and {sight2}.",
    "{hero} saw {sight1}, {sight2} and {sight3}.",
    "{sky}",
    "{sky} {hero} could see {sight3} from far away.",
    "{hero} looked around at the {sight1} and the {sight2}.",
    "{sky} It was a perfect day to be {at_place}.",
    "",
)

HAVE_OBJ: Beat = (
    "{hero} had {a_obj}. {He} took it everywhere.",
    "{His} {parent} had given {him} {a_obj}, and {he} loved it very much.",
    "{hero} had {a_obj} that {he} kept in {his} room. {He} liked to {use}.",
    "On {his} birthday, {hero} got {a_obj}. {He} loved to {use}.",
    "{hero} always carried {a_obj}. {He} liked to {use} whenever {he} could.",
    "The thing {hero} loved most was {a_obj}. Every day, {he} liked to {use}.",
    "{hero} had {a_obj}. It was the most precious thing {he} owned.",
    "{hero}'s {parent} had made {him} {a_obj}, so {he} kept it very safe.",
)

LOST_AND_FOUND: tuple[Paragraph, ...] = (
    (OPEN, ABOUT, HAVE_OBJ),
    (
        (
            "{time}, {hero} and {his} {parent} went to {the_place}.",
            "{time}, {hero} took {his} {obj} to {the_place}.",
            "{time}, {hero} went to {the_place} with {his} {parent}. {He} brought {his} {obj}.",
            '{time}, {his} {parent} said, "Let\'s go to {the_place}!" {hero} was {glad}.',
        ),
        SCENE,
        (
            "They {act}, and then they {act2}.",
            "{hero} and {his} {parent} {act}.",
            "First they {act}. Then they {act2}.",
            "{hero} played for a long time, and {he} set the {obj} down on the ground.",
        ),
        (
            "When it was time to go home, {hero} could not find {his} {obj}.",
            "But when {he} looked down, {his} {obj} was gone!",
            "Later, {hero} reached for {his} {obj}, but it was not there.",
            "Suddenly, {hero} saw that {his} {obj} was missing.",
            "After a while, {hero} looked around. {His} {obj} was gone!",
        ),
    ),
    (
        (
            '"Oh no! Where is my {obj}?" {hero} cried.',
            '"My {obj}! I lost my {obj}!" {hero} said. {His} eyes filled with tears.',
            '{hero} felt {sad}. "I have to find it," {he} said.',
            '"I can\'t find my {obj}!" {hero} told {his} {parent}.',
        ),
        (
            "{He} felt {sad} because {he} loved {his} {obj} so much.",
            "{hero} was {sad}, so {his} {parent} gave {him} a big hug.",
            '{His} {parent} said, "Don\'t worry. We will look for it together."',
            "",
        ),
        (
            "They looked near the {sight1}. They looked by the {sight2}. But it was not there.",
            "{hero} searched near the {sight1} and by the {sight2}, but {he} found nothing.",
            "They looked everywhere, but they could not find it.",
            "{hero} looked high and low. {He} looked near the {sight3}, but it was nowhere.",
        ),
    ),
    (
        (
            "{Then}, {an_animal} came by. The {animal} {sound} and {move} toward the {sight2}. "
            "{hero} followed it, and there, next to the {sight2}, was {his} {obj}!",
            "{Then}, {hero} saw {an_animal} near the {sight3}. It {sound} at {him}, as if to say, "
            '"Look here!" Right beside it lay the {obj}.',
            "Suddenly, {an_animal} {move} out from behind the {sight1}. The {obj} was right "
            "there with it! The {animal} had found it.",
            "A little {animal} was watching them. It {sound} and {move} away, so {hero} followed "
            "it. The {animal} stopped, and there was the {obj}!",
        ),
        (
            '"Thank you, little {animal}!" {hero} said.',
            '{hero} hugged {his} {obj}. "I will never lose you again," {he} whispered.',
            '"You found it!" said {his} {parent}. {hero} {smiled} from ear to ear.',
            "{hero} laughed, and the {animal} {sound} back.",
        ),
        (
            "From that day on, {hero} kept {his} {obj} close, and {he} never forgot the kind "
            "{animal}.",
            "That night, {hero} went to bed with {his} {obj} right beside {him}.",
            "{hero} felt {glad2} all the way home.",
            "{He} learned to always keep {his} things safe.",
        ),
    ),
)

STUCK: tuple[Paragraph, ...] = (
    (OPEN, ABOUT),
    (
        (
            "{time}, {hero} and {his} friend {friend} went to {the_place}. {hero} brought {a_obj}.",
            "{time}, {hero} met {his} best friend {friend} {at_place}. {hero} had {a_obj} "
            "with {him}.",
            "{time}, {friend} came to play with {hero} {at_place}. {hero} showed {fhim} {a_obj}.",
        ),
        SCENE,
        (
            '"Let\'s {use}!" said {friend}.',
            "The two friends took turns. They wanted to {use}.",
            "They {act} and laughed a lot.",
            "",
        ),
        (
            "Then a big gust of wind came, and the {obj} flew up into a tall tree. It was "
            "stuck on a high branch!",
            "But {hero} threw the {obj} too high, and it got stuck on the roof of a shed.",
            "Oops! {hero} tossed the {obj} up, and it landed on top of a tall fence.",
            "Suddenly, the wind blew the {obj} onto a high wall near the {sight1}.",
        ),
    ),
    (
        (
            '"Oh no!" said {hero}. "I can\'t reach it!"',
            '{hero} felt {sad}. "How will we get it back?" {he} asked.',
            '"What do we do now?" asked {friend}.',
            "{hero} tried and tried, but {he} could not get it.",
        ),
        (
            "{hero} stretched as far as {he} could, but {his} arms were too short.",
            "{He} jumped up and down, but it was no use.",
            "{He} was too small to do it alone.",
            "",
        ),
        (
            '{friend} thought hard. "I have an idea!" {fhe} said. "Let\'s work together."',
            '{Then}, {friend} {smiled}. "Two friends are better than one," {fhe} said.',
            '{friend} looked around. "If we help each other, we can do it," {fhe} said.',
        ),
        (
            "{friend} found a long stick, and {hero} held {fhis} hand so {fhe} would not fall.",
            "{hero} stood on a box, and {friend} held it steady.",
            "{friend} let {hero} stand on {fhis} shoulders, and {hero} reached up high.",
            "{friend} found an old ladder and held it while {hero} climbed up carefully.",
        ),
        (
            "{Then}, {an_animal} {move} by. The {animal} {sound}, as if to cheer them on.",
            "{An_animal} watched them from the {sight2}. It {sound}, as if it was cheering.",
            "Even {an_animal} nearby seemed to help. It {sound} and {move} around them.",
        ),
    ),
    (
        (
            "At last, they got the {obj} back!",
            "Soon the {obj} was safe in {hero}'s hands again.",
            'With one last try, they did it! "Hooray!" they shouted.',
        ),
        (
            '"Thank you, {friend}," said {hero}. "I could not do it without you."',
            '"We make a great team!" said {friend}.',
            "{hero} and {friend} laughed and gave each other a high five.",
        ),
        (
            "They played with the {obj} until the sun went down. It was the best day.",
            "{hero} learned that a hard job is easy when friends work together.",
            "Because they helped each other, the day ended happily.",
            "After that, {hero} and {friend} always said that two friends are better than one.",
        ),
    ),
)

TRIP: tuple[Paragraph, ...] = (
    (
        OPEN,
        ABOUT,
        (
            '{time}, {his} {parent} said, "Today we are going to {the_place}!"',
            "{time}, {hero}'s family went on a trip to {the_place}.",
            "{hero} had never been to {the_place} before, so {he} was very {glad} when {his} "
            "{parent} said they could go.",
        ),
        (
            "{hero} packed {a_obj}, some {food} and a warm sweater.",
            "{He} put {a_obj} in {his} bag, just in case.",
            "{He} could not stop smiling. {He} took {a_obj} with {him}.",
        ),
    ),
    (
        (
            "The trip was long. {hero} looked out of the window and counted trees.",
            "On the way, they sang songs and played games.",
            "They walked for a long time, and {hero}'s feet got tired.",
            "",
        ),
        (
            "When they got to {the_place}, {hero} opened {his} eyes wide.",
            "At last, they arrived. {hero} jumped up and down.",
            "{The_place_cap} was bigger than {hero} had ever imagined.",
        ),
        SCENE,
        (
            "{hero} took out the {obj}, because {he} wanted to {use}.",
            "First they {act}. Then {hero} took out {his} {obj}.",
            "{hero} and {his} {parent} {act}, and {hero} showed everyone {his} {obj}.",
        ),
    ),
    (
        (
            "{Then}, {hero} saw something. It was {an_animal}! The {animal} {sound} and {move} "
            "closer.",
            "Near the {sight2}, {hero} saw {num} {animals}. One little {animal} came right up "
            "to {him}.",
            '"Look!" shouted {hero}. {An_animal} {move} past the {sight1}.',
        ),
        (
            '"Hello, {animal}," {hero} whispered. The {animal} {sound}.',
            '{hero} laughed. "It likes me!" {he} said.',
            "{hero} stayed very still so {he} would not scare it.",
            "",
        ),
        (
            "At lunchtime, they sat down and ate {food}.",
            "Later, they had {food} under a big tree.",
            "When {hero} got hungry, {his} {parent} gave {him} some {food}.",
            "",
        ),
    ),
    (
        (
            "When the sun went down, it was time to go home.",
            "Soon it was evening, and they had to leave.",
            "At the end of the day, {hero} was very tired.",
        ),
        (
            '"Can we come back tomorrow?" asked {hero}. {His} {parent} laughed and said, '
            '"Maybe soon."',
            "{hero} fell asleep on the way home, holding {his} {obj}.",
            '"That was the best trip ever," {hero} said with a yawn.',
            "That night, {hero} dreamed of {the_place} and the little {animal}.",
        ),
    ),
)

SHARING: tuple[Paragraph, ...] = (
    (OPEN, ABOUT, HAVE_OBJ),
    (
        (
            "{time}, {hero} was {at_place} with {his} friend {friend}.",
            "{time}, {hero} went to {the_place}. {His} friend {friend} was there too.",
            "{time}, {friend} came over to play {at_place}.",
        ),
        SCENE,
        (
            '{friend} saw the {obj} and said, "Can I try it, please?"',
            '"Can I {use} too?" asked {friend}.',
            '{friend} looked at the {obj}. "It\'s so nice! May I hold it?" {fhe} asked.',
        ),
        (
            '"No! It\'s mine!" said {hero}, and {he} held it tight.',
            '{hero} shook {his} head. "No, it\'s only for me," {he} said.',
            "But {hero} did not want to share. {He} hid the {obj} behind {his} back.",
        ),
        (
            "{friend} looked {sad}. {Fhe} walked away and sat alone.",
            "{friend} felt {sad}, so {fhe} went home early.",
            "{friend}'s smile went away. {Fhe} did not want to play anymore.",
        ),
    ),
    (
        (
            "Now {hero} had the {obj} all to {self}, but it was not fun at all.",
            "{hero} played alone, but {he} felt {sad} too.",
            "Playing alone was boring. {hero} missed {friend}.",
        ),
        (
            "{Then}, {an_animal} {move} by. {hero} saw that the {animal} was sharing its food "
            "with another {animal}.",
            "{hero} saw {num} {animals} {at_place}. One {animal} was sharing with the others, "
            "and they all looked {glad2}.",
            "{Then}, {an_animal} came close and {sound}. It was all alone, just like {hero}.",
        ),
        (
            '{His} {parent} said, "Things are more fun when we share them."',
            "{hero} thought about {friend}. {He} knew what to do.",
            '"Maybe sharing is better," {hero} said to {self}.',
        ),
    ),
    (
        (
            '{hero} ran to {friend}. "I\'m sorry," {he} said. "Do you want a turn?"',
            '{hero} found {friend} and held out the {obj}. "Here, you can have a turn," {he} said.',
            '{hero} went to {friend}. "I was wrong," {he} said. "Let\'s play together."',
        ),
        (
            "{friend} {smiled} a big smile. They took turns with the {obj} all afternoon.",
            '"Thank you!" said {friend}. Then they {act} together.',
            "{friend} hugged {hero}, and they {act}.",
        ),
        (
            "{hero} learned that sharing makes everyone happy.",
            "From then on, {hero} always shared {his} things, because sharing made {him} feel "
            "{glad2}.",
            "It was much more fun to play together than alone.",
        ),
    ),
)

CAREFUL: tuple[Paragraph, ...] = (
    (OPEN, ABOUT, HAVE_OBJ),
    (
        (
            "{time}, {hero} went to {the_place} with {his} {parent}.",
            "{time}, {hero} and {his} {parent} walked to {the_place}.",
        ),
        SCENE,
        (
            '{His} {parent} said, "Be careful with your {obj}, and stay close to me."',
            '"Please don\'t run, {hero}," said {his} {parent}. "You might drop your {obj}."',
            '"Hold your {obj} with both hands," {his} {parent} said.',
        ),
        (
            "But {hero} did not listen. {He} wanted to {use} right away.",
            "{hero} nodded, but {he} was not really listening.",
            "{hero} was too excited to listen. {He} ran ahead.",
        ),
    ),
    (
        (
            "{He} ran fast toward the {sight1}, and {he} tripped! The {obj} fell and rolled away.",
            "{He} climbed up on the {sight2}, and {he} slipped. The {obj} fell into the mud.",
            "{He} spun around and around, and the {obj} flew out of {his} hands.",
        ),
        (
            '"Oh no!" cried {hero}. "My {obj}!"',
            "{hero} sat down and started to cry.",
            "Now the {obj} was dirty and scratched. {hero} felt {sad}.",
        ),
        (
            "{Then}, {an_animal} {move} over. The {animal} {sound} softly, and {hero} stopped "
            "crying to look.",
            "{An_animal} sat nearby and looked at {hero} with big eyes. The {animal} {sound}.",
            "Nearby, {an_animal} was taking its time. It did not rush at all.",
        ),
        (
            "{His} {parent} came and helped {him} up. {Phe} cleaned the {obj} and gave it back.",
            '{His} {parent} gave {him} a hug. "It\'s okay," {phe} said. "Let\'s fix it."',
            "{His} {parent} picked up the {obj} and wiped it clean.",
        ),
    ),
    (
        (
            '"I\'m sorry I did not listen," said {hero}.',
            '"I should have been careful," {hero} said quietly.',
            '{hero} looked at the {animal}. "It goes slow and steady," {he} said.',
        ),
        (
            '{His} {parent} {smiled}. "We all make mistakes. Now you know."',
            '"That is how we learn," said {his} {parent}.',
            "{His} {parent} kissed {his} head.",
            "",
        ),
        (
            "From that day on, {hero} always listened, and {he} held {his} {obj} with care.",
            "{hero} learned that it is good to listen and to be careful.",
            "After that, {hero} walked slowly and kept {his} {obj} safe, just like {his} "
            "{parent} said.",
        ),
    ),
)

GIFT: tuple[Paragraph, ...] = (
    (
        OPEN,
        ABOUT,
        (
            "{hero} had a best friend named {friend}. Tomorrow was {friend}'s birthday.",
            "{hero}'s friend {friend} was turning {num} soon.",
            "{friend} was {hero}'s best friend, and {fhis} birthday was coming.",
        ),
        (
            '"I want to give {friend} something special," {hero} said.',
            "{hero} wanted to find the perfect present, because {friend} was always kind to {him}.",
            "{hero} thought and thought. What would {friend} like?",
        ),
    ),
    (
        (
            "{time}, {hero} went to {the_place} with {his} {parent} to look for a present.",
            "{time}, {hero} walked to {the_place}. Maybe {he} could find a present there.",
            "{hero} asked {his} {parent} for help, and they went to {the_place}.",
        ),
        SCENE,
        (
            "There {hero} found {a_obj}. It was perfect!",
            "{hero} looked and looked. At last, {he} saw {a_obj}.",
            "{Then}, {hero} saw {a_obj}. {friend} loved to {use}!",
        ),
        (
            '"{friend} will love this," {hero} said.',
            "{hero} paid with the coins from {his} piggy bank.",
            "{hero} was so {glad} that {he} skipped all the way home.",
            "",
        ),
    ),
    (
        (
            "At home, {hero} wrapped the {obj} in {color} paper and tied a bow on top.",
            "{hero} put the {obj} in a bag and drew {color} stars on it.",
            "{He} wrapped the {obj} carefully and hid it under {his} bed.",
        ),
        (
            "But then {an_animal} {move} into the room! The {animal} sniffed the present and "
            "{sound}.",
            "{His} pet {animal} tried to open the present, but {hero} stopped it just in time.",
            "{An_animal} watched from the window. It {sound}, as if it knew a secret.",
        ),
        (
            '"Shh," {hero} said. "It\'s a surprise."',
            "{hero} giggled and put the present up high.",
            "",
        ),
    ),
    (
        (
            "The next day, {hero} gave the present to {friend}.",
            'At the party, {hero} held out the present. "Happy birthday, {friend}!"',
            '{hero} knocked on {friend}\'s door. "Surprise!" {he} shouted.',
        ),
        (
            '{friend} opened it and gasped. "{A_obj_cap}! I love it!" {fhe} said.',
            '{friend}\'s eyes got big. "How did you know I wanted {a_obj}?" {fhe} asked.',
            "When {friend} saw the {obj}, {fhe} jumped for joy.",
        ),
        (
            "{Then}, they {act}, and {friend} let {hero} {use} too.",
            "They ate cake and {act}.",
            "{friend} gave {hero} a big hug.",
        ),
        (
            "{hero} felt warm inside. Giving a gift felt even better than getting one.",
            "It was the best birthday ever, and {hero} was {glad2} too.",
            "{hero} learned that making a friend happy makes you happy too.",
        ),
    ),
)

FEAR: tuple[Paragraph, ...] = (
    (
        OPEN,
        ABOUT,
        (
            "But {hero} was {scared} of {animals}.",
            "There was one thing {hero} did not like: {animals}. {He} was {scared} of them.",
            "{hero} was brave about many things, but {he} was {scared} of {animals}.",
        ),
        (
            "Whenever {he} saw one, {he} hid behind {his} {parent}.",
            "{He} thought they might bite, so {he} always stayed far away.",
            "Even a picture of one made {him} shiver.",
        ),
    ),
    (
        (
            "{time}, {hero} and {his} {parent} went to {the_place}. {hero} held {a_obj} tight.",
            "{time}, {hero} went to {the_place}. {He} brought {a_obj} because it made {him} "
            "feel safe.",
        ),
        SCENE,
        (
            "Suddenly, {an_animal} {move} right up to {hero}!",
            "Near the {sight1}, there was {an_animal}. It was looking at {hero}.",
            "{Then}, {hero} heard a sound. {An_animal} {sound} and came closer.",
        ),
        (
            '{hero} froze. "Help!" {he} whispered.',
            "{hero}'s heart went thump, thump, thump.",
            "{hero} wanted to run away, but {his} feet would not move.",
        ),
    ),
    (
        (
            '{His} {parent} knelt down. "Don\'t be {scared}," {phe} said. "This {animal} is '
            'friendly."',
            '"It\'s okay," said {his} {parent}. "Look how gentle it is."',
            '{His} {parent} held {his} hand. "Let\'s be brave together," {phe} said.',
        ),
        (
            "The {animal} {sound} softly. It looked at the {obj}.",
            "The {animal} sat down and waited. It was very gentle.",
            "The {animal} was small and curious, not scary at all.",
        ),
        (
            "{hero} took a deep breath. Slowly, {he} held out {his} {obj}.",
            "{hero} counted to three. Then {he} stepped closer.",
            "{hero} was still {scared}, but {he} wanted to be brave.",
        ),
        (
            "The {animal} sniffed the {obj} and {sound}. {hero} laughed!",
            "The {animal} nuzzled {his} hand. It felt soft and warm.",
            "The {animal} {move} around {hero} and then sat at {his} feet.",
        ),
    ),
    (
        (
            '"I\'m not {scared} anymore!" said {hero}.',
            '"You were so brave," said {his} {parent}.',
            '{hero} {smiled}. "{Animals_cap} are not so bad," {he} said.',
        ),
        (
            "From that day on, {hero} was not afraid of {animals}. {He} even wanted one as a pet.",
            "{hero} learned that some things are only scary until you get to know them.",
            "{hero} felt {glad} and proud, because {he} had been brave.",
        ),
    ),
)

RESCUE: tuple[Paragraph, ...] = (
    (OPEN, ABOUT),
    (
        (
            "{time}, {hero} was playing {at_place} with {a_obj}.",
            "{time}, {hero} took {a_obj} to {the_place}. {He} wanted to {use} there.",
            "{time}, {hero} and {his} {parent} took a walk to {the_place}. {hero} carried {a_obj}.",
        ),
        SCENE,
        (
            "{Then}, {hero} heard a tiny sound. It came from behind the {sight2}.",
            "Suddenly, {hero} saw something move near the {sight1}.",
            "As {he} walked, {hero} heard a small cry.",
        ),
        (
            "It was {an_animal}! The poor {animal} was all alone.",
            "There was {an_animal}, and it looked cold and hungry.",
            "It was {an_animal} with a hurt leg. It could not go home.",
            "{An_animal} was stuck in a bush and could not get out.",
        ),
    ),
    (
        (
            '"Don\'t worry, little {animal}," said {hero}. "I will help you."',
            '{hero} knelt down. "Are you lost?" {he} asked softly.',
            "{hero} felt {sad} for the {animal}, so {he} decided to help it.",
        ),
        (
            "{He} gave it some {food}, and the {animal} ate it all.",
            "{He} made a soft bed for it and kept it warm.",
            "{He} gently picked it up and held it close.",
            "{He} used the {obj} to help, and {he} was very gentle.",
        ),
        (
            '{hero}\'s {parent} came to look. "You are very kind," {phe} said.',
            '"Can we keep it?" asked {hero}. "It has a family," said {his} {parent}.',
            "Soon the {animal} felt better. It {sound} happily.",
        ),
    ),
    (
        (
            "{Then}, they heard another sound. It was the {animal}'s family!",
            "Later, {num} more {animals} came looking. They were its family.",
            "They looked around, and soon they found where the {animal} lived.",
        ),
        (
            "The little {animal} {move} back to them. It was home again.",
            "The {animal} {sound} and {move} off to join them.",
            "{hero} waved goodbye as the {animal} went home.",
        ),
        (
            "{hero} felt {glad2}, because {he} had helped a friend.",
            "After that, the {animal} came back to visit {hero} every {day}.",
            "{hero} learned that even a small helper can do a big thing.",
            'That night, {hero} told {his} {parent}, "Helping is the best feeling."',
        ),
    ),
)

NEW_FRIEND: tuple[Paragraph, ...] = (
    (
        OPEN,
        (
            "{He} was a little shy, and {he} did not have many friends.",
            "{hero} was new in town, so {he} did not know anyone yet.",
            "{hero} often played alone, because {he} was too shy to say hello.",
        ),
    ),
    (
        (
            "{time}, {hero} went to {the_place} with {a_obj}.",
            "{time}, {hero}'s {parent} took {him} to {the_place}. {hero} brought {a_obj}.",
        ),
        SCENE,
        (
            "{He} sat down alone with {his} {obj}.",
            "{He} played by {self} near the {sight1}.",
            "{hero} watched the other children play. {He} held {his} {obj} and waited.",
        ),
        (
            'Then a {kind2} came over. "Hi, I\'m {friend}," {fhe} said. "I like your {obj}!"',
            '{friend} was sitting nearby. {Fhe} looked at the {obj} and said, "Wow! Can I see?"',
            'A {kind2} named {friend} walked up. "What is that?" {fhe} asked.',
        ),
    ),
    (
        (
            '{hero} was almost too shy to talk, but {he} said, "Hi. You can {use} too, if '
            'you want."',
            '{hero} {smiled} a little. "Do you want to play?" {he} asked.',
            "{hero} did not know what to say, so {he} held out the {obj}.",
        ),
        (
            "{friend} grinned. The two of them {act}.",
            "Soon they were laughing together. They {act} and then {act2}.",
            "They played with the {obj}, and then they {act}.",
        ),
        (
            "{Then}, {an_animal} {move} by, and the two friends followed it around the {place}.",
            "{An_animal} watched them and {sound}. {hero} and {friend} laughed and laughed.",
            'They saw {an_animal} near the {sight3}. "Look!" said {friend}. "It {sound}!"',
        ),
    ),
    (
        (
            'When it was time to go, {friend} said, "Can we play again tomorrow?"',
            '"Will you come back?" asked {hero}. "Yes!" said {friend}.',
        ),
        (
            "{hero} was not lonely anymore. {He} had a new friend.",
            "{hero} went home with a big smile, because {he} had made a friend.",
            "From that day on, {hero} and {friend} were best friends.",
        ),
        (
            "{He} learned that saying hello can be the start of something wonderful.",
            "Sometimes, all it takes to make a friend is one small hello.",
            "",
        ),
    ),
)

GARDEN: tuple[Paragraph, ...] = (
    (
        OPEN,
        ABOUT,
        (
            '{time}, {his} {parent} came back from {the_place} with a tiny seed. "If you take '
            'care of it, it will grow," {phe} said.',
            "{time}, {hero} found a little seed {at_place}. {He} decided to plant it.",
            "{time}, {hero} and {his} {parent} went to {the_place} and came home with a packet of "
            "seeds.",
        ),
    ),
    (
        (
            "{hero} dug a small hole, dropped the seed in and patted the dirt down.",
            "Together they planted the seed in a pot by the window.",
            "{hero} chose a sunny spot and planted the seed with care.",
        ),
        (
            "{He} put {a_obj} next to the pot, because {he} thought it would bring good luck.",
            "{He} set {a_obj} beside the pot to keep the seed company.",
            "Every morning, {he} sat by the pot with {a_obj} and waited.",
        ),
        (
            "{hero} watered it every day. But nothing happened.",
            "One day passed, then two, then three. The dirt was still bare.",
            '"Why is it not growing?" {hero} asked. {He} felt {sad}.',
        ),
        (
            '"Plants take time," said {his} {parent}. "You have to be patient."',
            '{His} {parent} {smiled}. "Good things grow slowly," {phe} said.',
            '"Keep going," said {his} {parent}. "The seed is busy under the ground."',
        ),
    ),
    (
        (
            "{hero} kept watering and waiting, even when it was hard.",
            "So {hero} waited. {He} {act} to pass the time.",
            "{He} sang to the seed and told it stories while {he} waited.",
        ),
        (
            'One morning, {hero} saw {an_animal} sniffing at the pot. "Shoo!" {he} said, and '
            "the {animal} {move} away.",
            "One day, {an_animal} {move} up to the window and looked at the pot. It {sound}, as "
            "if it was waiting too.",
            "Even {his} friend the {animal} came by to check. It {sound} and {move} around the "
            "pot.",
        ),
        (
            "Then, one sunny day, {hero} saw a tiny green leaf!",
            "At last, a little green sprout poked out of the dirt.",
            "And then it happened: a small green shoot came up.",
        ),
    ),
    (
        (
            "The sprout grew and grew, and soon there was {a_color} flower.",
            "Weeks later, the plant was taller than {hero}, with big {color} blooms.",
            "Soon it was a beautiful plant with {color} flowers.",
        ),
        (
            '"I did it!" {hero} shouted. {He} felt so {glad2}.',
            "{hero} showed it to everyone, even the {animal}.",
            '"You see?" said {his} {parent}. "Waiting was worth it."',
        ),
        (
            "{hero} learned that good things take time.",
            "From then on, {hero} was more patient, because {he} knew that things grow slowly.",
            "{hero} planted more seeds the next spring, and the {obj} stayed by the pot for luck.",
        ),
    ),
)

RAINY_DAY: tuple[Paragraph, ...] = (
    (
        OPEN,
        ABOUT,
        (
            "One rainy morning, {hero} looked out of the window. Rain was pouring down.",
            "It had rained all day, and {hero} could not go outside.",
            "One gray afternoon, big drops of rain tapped on the window.",
        ),
        (
            '"I\'m bored," {hero} said. "I wanted to go to {the_place}."',
            "{hero} had planned to go to {the_place}, but now {he} had to stay inside.",
            '{hero} sighed. "Now we can\'t go to {the_place}," {he} said.',
        ),
    ),
    (
        (
            '{His} {parent} had an idea. "Why don\'t we bring {the_place} inside?" {phe} asked.',
            '{His} {parent} {smiled}. "Let\'s pretend we are at {the_place}," {phe} said.',
            '"We can make our own {place} right here," said {his} {parent}.',
        ),
        (
            "They built a fort out of blankets and chairs.",
            "They pushed the couch aside and put pillows all over the floor.",
            "They made {sight1} out of paper and {sight2} out of boxes.",
        ),
        (
            "{hero} brought {a_obj}, because every trip needs one.",
            "{hero} ran to get {a_obj}. Now the game could begin.",
            "{hero} found {a_obj} in the toy box and added it to the game.",
        ),
        (
            "They {act}, and then they {act2}.",
            "{hero} pretended to {use}, and {his} {parent} laughed.",
            "They had a snack of {food} on a blanket, just like a real picnic.",
        ),
    ),
    (
        (
            "Outside, {an_animal} was hiding from the rain under a bush.",
            "Through the window, {hero} saw {an_animal}. It was wet, and it looked {sad}.",
            "{Then}, {hero} heard a noise at the door. It was {an_animal}, all wet from the rain!",
        ),
        (
            "{hero} waved at the {animal}, and it {sound}.",
            '"Poor {animal}," said {hero}. "I hope it stays dry."',
            "{hero} put a little dish out for the {animal}, and it {move} closer.",
        ),
        (
            "After a while, the rain stopped, and a rainbow came out.",
            "Soon the sun peeked out from behind the clouds.",
            "By evening, the rain was over, and the puddles shone.",
        ),
        (
            '"Look! A rainbow!" shouted {hero}.',
            "{hero} ran to the window and smiled.",
            "",
        ),
        (
            "{hero} learned that a rainy day can be fun too.",
            '"That was the best rainy day ever," said {hero}.',
            "{hero} could not wait for the next rainy day, because now {he} knew how to have fun "
            "inside.",
        ),
    ),
)

RACE: tuple[Paragraph, ...] = (
    (
        OPEN,
        ABOUT,
        (
            "{time}, there was a big race {at_place}.",
            "{time}, everyone in town went to {the_place} for the big race.",
            "Every year, the children had a race {at_place}, and this year {hero} was old enough "
            "to run.",
        ),
        (
            "The winner would get {a_obj} as a prize.",
            "{hero} wanted to win {a_obj}, the shiny prize.",
            "The prize was {a_obj}, and {hero} wanted it more than anything.",
        ),
    ),
    (
        (
            "{hero} practiced every day. {He} wanted to be as fast as {an_animal}.",
            "{He} ran and ran, trying to be as quick as {an_animal}.",
            '{He} practiced with {his} friend {friend}. "Run like {an_animal}!" {friend} said.',
        ),
        (
            "On the day of the race, {hero} felt {scared}.",
            "When the race day came, {hero}'s legs felt shaky.",
            "On race day, {hero} stood at the start line with {his} friend {friend}.",
        ),
        (
            '"Ready, set, go!" called {his} {parent}.',
            "A whistle blew, and all the children ran.",
            '"Go!" shouted the crowd, and off they went.',
        ),
        (
            "{hero} ran fast past the {sight1}. {He} was in front!",
            "{hero} ran as fast as {he} could. The wind blew in {his} hair.",
            "{hero} started slowly, but then {he} ran faster and faster.",
        ),
    ),
    (
        (
            "{Then}, {friend} tripped and fell down. {Fhe} was hurt.",
            "Near the end, {hero} saw {friend} sitting on the ground. {Fhe} had fallen.",
            "Suddenly, {hero} heard a cry. {friend} had tripped over a rock.",
        ),
        (
            "{hero} stopped. {He} could win, or {he} could help {fhim}.",
            "{hero} wanted the prize, but {friend} looked {sad}.",
            "{hero} thought about the prize. Then {he} thought about {friend}.",
        ),
        (
            "{hero} ran back and helped {friend} up. They crossed the finish line together, last "
            "of all.",
            '{hero} took {friend}\'s hand. "Come on, we can finish together," {he} said.',
            "{hero} helped {friend} stand, and they walked the rest of the way side by side.",
        ),
        (
            "Another child won the race and the {obj}.",
            "{hero} did not win the {obj}.",
            "The prize went to someone else.",
        ),
    ),
    (
        (
            'But then the judge came over. "That was the kindest thing I saw today," the '
            "judge said, and gave {hero} a special {obj} too.",
            "Everyone clapped for {hero} and {friend}. The cheering was louder than for the "
            "winner.",
            '{His} {parent} hugged {him}. "I am so proud of you," {phe} said.',
        ),
        (
            "{hero} learned that being kind is better than winning.",
            '{hero} {smiled}. "Helping a friend felt better than any prize," {he} said.',
            "{hero} and {friend} were {glad2}, because they had finished together.",
        ),
    ),
)

HONESTY: tuple[Paragraph, ...] = (
    (
        OPEN,
        ABOUT,
        (
            "{hero}'s {parent} had {a_obj} that {phe} loved very much.",
            "On a shelf in the house sat {a_obj}. It belonged to {hero}'s {parent}.",
            "{hero}'s {parent} kept {a_obj} in a special place, and {phe} always said, \"Please "
            'be careful with it."',
        ),
        (
            "{hero} also had a pet {animal}. It {move} around the house all day.",
            "The family had a pet {animal} that {sound} all day long.",
            "{hero} lived with {his} {parent} and a little {animal}.",
        ),
    ),
    (
        (
            "{time}, after a trip to {the_place}, {hero} took the {obj} off the shelf. {He} "
            "wanted to {use}.",
            "{time}, {hero} took the {obj} to play with it, even though {he} knew {he} should "
            "not. {He} wanted to pretend {he} was {at_place}.",
            "{time}, while {his} {parent} was busy, {hero} played a game about {the_place}. "
            "When nobody was looking, {he} picked up the {obj}.",
        ),
        (
            "Oh no! It slipped and fell on the floor. Now it was broken.",
            "{He} dropped it, and it broke into pieces.",
            "Crash! The {obj} fell, and a piece broke off.",
        ),
        (
            "{hero} felt {scared}. {He} hid the pieces behind the couch.",
            "{hero}'s heart beat fast. What would {his} {parent} say?",
            "{hero} did not know what to do, so {he} ran to {his} room.",
        ),
    ),
    (
        (
            'Later, {his} {parent} asked, "Who broke my {obj}?"',
            '{His} {parent} found the pieces. "What happened to my {obj}?" {phe} asked.',
        ),
        (
            '"The {animal} did it," said {hero}. The {animal} looked up and {sound}.',
            '{hero} pointed at the {animal}. "It was the {animal}!" {he} said.',
            '{hero} looked at the floor. "Maybe the {animal} did it," {he} said quietly.',
        ),
        (
            "That night, {hero} could not sleep. {He} felt {sad} inside, because {he} had not "
            "told the truth.",
            "The poor {animal} had to sleep outside that night. {hero} felt terrible.",
            "{hero} lay in bed. {His} tummy felt funny, because a lie is heavy to carry.",
        ),
    ),
    (
        (
            '{hero} went to {his} {parent}. "I broke it," {he} said. "I\'m sorry I said it was '
            'the {animal}."',
            'In the morning, {hero} said, "It was me. I broke the {obj}. I\'m sorry."',
        ),
        (
            '{His} {parent} hugged {him}. "Thank you for telling the truth," {phe} said.',
            '{His} {parent} was quiet for a moment. Then {phe} said, "I\'m glad you told me."',
        ),
        (
            "Together, they glued the {obj} back together. It was not perfect, but it was fine.",
            "They fixed the {obj} with glue, and {hero} gave the {animal} an extra treat.",
            "{hero} helped clean up, and {his} {parent} gave {him} a kiss.",
        ),
        (
            "{hero} learned that telling the truth is always the right thing to do.",
            "{hero} felt light and {glad}. Telling the truth felt so much better.",
            "From then on, {hero} always told the truth, even when it was hard.",
        ),
    ),
)

DREAM: tuple[Paragraph, ...] = (
    (
        OPEN,
        ABOUT,
        (
            "One night, {hero} could not fall asleep. {He} held {a_obj} and looked at the stars.",
            "One night, {hero} went to bed with {a_obj} under {his} pillow.",
            "At bedtime, {hero}'s {parent} read {him} a story and put {a_obj} next to the bed.",
        ),
        (
            "Soon {his} eyes closed, and {he} began to dream.",
            "Slowly, {he} fell asleep.",
            "{He} yawned a big yawn and drifted off to sleep.",
        ),
    ),
    (
        (
            "In the dream, {hero} was {at_place}. Everything glowed with a soft {color} light.",
            "{hero} dreamed that {he} was {at_place}, and everything was much bigger than usual.",
            "In {his} dream, {hero} woke up {at_place}, far from home.",
        ),
        (
            '{Then}, {an_animal} came up to {him} and said, "Hello, {hero}! I have been waiting '
            'for you."',
            '{An_animal} {move} up to {him}. "Can you help me?" it asked. "I lost my way home."',
            '{An_animal} tipped its hat and said, "Welcome! Follow me!"',
        ),
        (
            '{hero} was surprised. "You can talk!" {he} said. "Of course," said the {animal}. '
            '"In dreams, everyone can talk."',
            "{hero} laughed, because {he} had never met a talking {animal} before.",
            '{hero} blinked. "Did you just talk?" {he} asked. The {animal} nodded.',
        ),
    ),
    (
        (
            "The {animal} and {hero} {act}, and then they {act2}.",
            "They went past the {sight2} and over the {sight3}.",
            "Together they flew over the {sight1}, high above the ground.",
        ),
        (
            "The {obj} began to glow. It was magic!",
            "{hero}'s {obj} was there too, and now it could do magic.",
            "When {hero} held up the {obj}, the path lit up.",
        ),
        (
            '"Thank you for coming," said the {animal}. "Now it is time to go home."',
            'The {animal} said, "You are a good friend, {hero}. Come back soon."',
            'At last the {animal} smiled. "You helped me so much," it said.',
        ),
    ),
    (
        (
            "{Then}, {hero} opened {his} eyes. It was morning, and the {obj} was right beside "
            "{him}.",
            "{hero} woke up in {his} own bed. The sun was shining in.",
        ),
        (
            "Was it only a dream? {hero} was not sure, because there was a tiny {color} "
            "feather on {his} pillow.",
            '{hero} ran to tell {his} {parent}. "I met a talking {animal}!" {he} said.',
            "{hero} {smiled}. It had been the best dream ever.",
        ),
        (
            "That night, {hero} went to sleep early, hoping to dream of the {animal} again.",
            "{hero} never forgot the dream about {the_place}.",
            "",
        ),
    ),
)

OUTDOOR_PLOTS = frozenset({"lost_and_found", "stuck", "trip", "careful", "race", "rescue"})

PLOTS: dict[str, tuple[Paragraph, ...]] = {
    "lost_and_found": LOST_AND_FOUND,
    "stuck": STUCK,
    "trip": TRIP,
    "sharing": SHARING,
    "careful": CAREFUL,
    "gift": GIFT,
    "fear": FEAR,
    "rescue": RESCUE,
    "new_friend": NEW_FRIEND,
    "garden": GARDEN,
    "rainy_day": RAINY_DAY,
    "race": RACE,
    "honesty": HONESTY,
    "dream": DREAM,
}
