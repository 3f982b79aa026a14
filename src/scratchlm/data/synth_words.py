"""Vocabulary of the synthetic story generator: names, animals, objects, places and phrases.

Plain data, written for this project. `scratchlm.data.synth` combines it into stories; a
post-training task can draw from the same lists to phrase instructions with checkable words.
Every list is a tuple so that its order, and hence every seeded draw from it, never changes
between runs or machines.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Animal:
    """An animal: singular and plural nouns, a past-tense sound and way of moving, a habitat."""

    name: str
    plural: str
    sound: str
    move: str
    water: bool = False


@dataclass(frozen=True)
class Thing:
    """A carryable object and what a child does with it ("fly it"), always with the pronoun it."""

    name: str
    use: str


@dataclass(frozen=True)
class Place:
    """A place taking "the", its preposition ("in the park"), three sights there, and flags.

    Sights are plural or mass nouns without an article ("swings", "green grass").
    """

    name: str
    prep: str
    sights: tuple[str, str, str]
    water: bool = False
    indoor: bool = False


GIRL_NAMES: tuple[str, ...] = tuple(
    """
    Lily Mia Zoe Ana Emma Olivia Ava Sophia Isabella Amelia Harper Evelyn Abigail Emily Ella
    Grace Chloe Nora Hazel Ruby Luna Stella Violet Aurora Ivy Willow Daisy Rose Poppy Iris
    Alice Clara Lucy Maya Leah Sara Hannah Layla Aria Elena Camila Julia Nina Tessa Greta
    Molly Holly Jenny Katie Lola Bella Sadie Penny Wendy Fiona Gemma Heidi Ingrid Joy Kira
    Lena Mabel Nell Opal Paige Quinn Rita Sofia Tara Uma Vera Wren Xena Yara Zara Amira Bea
    Cora Dina Eva Faye Gina Hope Ines Jade Kate Lara Mira Noa Pia Rosa Sky Tia Una Vivi
    Ada Beth Cleo Dora Edie Flora Gwen Hattie Isla June Kiki Lottie Maddie Nadia Olive Priya
    Rina Sunny Tilly Ursula Val Winnie Yuki Zelda Annie Becca Celia Della Ellie Frida Goldie
    Hana Jasmine Keira Lucia Meg Naomi Orla Pearl Rosie Selma Trixie Vicky Zuri Aisha Mei
    Leila Marisol Nia Ayla Esme Freya Lulu Margot Pippa Romy Thea Noor Saoirse Imani Elsa
    """.split()
)

BOY_NAMES: tuple[str, ...] = tuple(
    """
    Tom Ben Max Sam Leo Jack Liam Noah Oliver Elijah James Lucas Henry Theo Owen Jacob Ethan
    Mason Logan Caleb Finn Hugo Oscar Felix Jasper Milo Otto Arlo Ezra Silas Jonah Eli Adam
    Alex Ryan Dylan Nathan Aaron Luke Mark Paul Peter Simon Victor Walter Zach Toby Teddy
    Charlie Archie Freddie Alfie Bobby Danny Eddie Frankie Georgie Harry Johnny Kenny Larry
    Ned Ollie Percy Ricky Sammy Timmy Willy Abe Ari Bo Cal Dex Ed Fred Gus Hal Ike Jay Kai Lou
    Mo Nico Pete Ray Sid Ty Vic Wes Zed Amir Bruno Carlos Diego Emil Farid Gabe Hassan Ivan
    Jamal Karl Lars Mateo Nate Omar Pablo Rafael Santi Tariq Umar Yusuf Ali Andre Basil Cyrus
    Dario Enzo Flynn Gideon Hank Idris Joel Kofi Levi Marco Nils Orson Rocco Rory Seth Tobias
    Vince Wyatt Xavier Yosef Zane Austin Benji Cody Dean Elliot Gil Hiro Ian Jude Kit Lenny
    Manny Neil Pip Reuben Stan Tate Ziggy Rami Kenji Bram Duncan Emeka Fergus Ravi Sven
    """.split()
)

ANIMALS: tuple[Animal, ...] = (
    Animal("dog", "dogs", "barked", "ran"),
    Animal("puppy", "puppies", "yipped", "bounced"),
    Animal("cat", "cats", "meowed", "padded"),
    Animal("kitten", "kittens", "mewed", "tumbled"),
    Animal("rabbit", "rabbits", "twitched its nose", "hopped"),
    Animal("bunny", "bunnies", "wiggled its ears", "hopped"),
    Animal("mouse", "mice", "squeaked", "scurried"),
    Animal("hamster", "hamsters", "squeaked", "scampered"),
    Animal("squirrel", "squirrels", "chattered", "scampered"),
    Animal("chipmunk", "chipmunks", "chirped", "darted"),
    Animal("hedgehog", "hedgehogs", "sniffed", "shuffled"),
    Animal("fox", "foxes", "yipped", "trotted"),
    Animal("wolf", "wolves", "howled", "loped"),
    Animal("bear", "bears", "growled softly", "lumbered"),
    Animal("deer", "deer", "flicked its tail", "stepped"),
    Animal("moose", "moose", "snorted", "plodded"),
    Animal("raccoon", "raccoons", "chittered", "crept"),
    Animal("skunk", "skunks", "sniffed", "waddled"),
    Animal("badger", "badgers", "grunted", "shuffled"),
    Animal("otter", "otters", "squeaked", "slid"),
    Animal("beaver", "beavers", "slapped its tail", "waddled"),
    Animal("horse", "horses", "neighed", "trotted"),
    Animal("pony", "ponies", "neighed", "trotted"),
    Animal("donkey", "donkeys", "brayed", "trotted"),
    Animal("cow", "cows", "mooed", "walked"),
    Animal("calf", "calves", "mooed", "wobbled"),
    Animal("pig", "pigs", "oinked", "trotted"),
    Animal("piglet", "piglets", "squealed", "trotted"),
    Animal("sheep", "sheep", "baaed", "trotted"),
    Animal("lamb", "lambs", "bleated", "skipped"),
    Animal("goat", "goats", "bleated", "jumped"),
    Animal("chicken", "chickens", "clucked", "pecked its way"),
    Animal("chick", "chicks", "peeped", "toddled"),
    Animal("rooster", "roosters", "crowed", "strutted"),
    Animal("duck", "ducks", "quacked", "waddled"),
    Animal("duckling", "ducklings", "peeped", "waddled"),
    Animal("goose", "geese", "honked", "waddled"),
    Animal("turkey", "turkeys", "gobbled", "strutted"),
    Animal("owl", "owls", "hooted", "flew"),
    Animal("robin", "robins", "sang", "fluttered"),
    Animal("sparrow", "sparrows", "chirped", "fluttered"),
    Animal("crow", "crows", "cawed", "flapped"),
    Animal("parrot", "parrots", "squawked", "flew"),
    Animal("pigeon", "pigeons", "cooed", "strutted"),
    Animal("bluebird", "bluebirds", "sang", "flew"),
    Animal("woodpecker", "woodpeckers", "tapped", "flew"),
    Animal("hummingbird", "hummingbirds", "buzzed", "zipped"),
    Animal("eagle", "eagles", "screeched", "soared"),
    Animal("swan", "swans", "hissed softly", "glided"),
    Animal("peacock", "peacocks", "called out", "strutted"),
    Animal("penguin", "penguins", "squawked", "waddled"),
    Animal("flamingo", "flamingos", "honked", "stepped"),
    Animal("frog", "frogs", "croaked", "hopped"),
    Animal("toad", "toads", "croaked", "hopped"),
    Animal("turtle", "turtles", "blinked slowly", "crawled"),
    Animal("tortoise", "tortoises", "blinked", "crawled"),
    Animal("lizard", "lizards", "flicked its tongue", "skittered"),
    Animal("snake", "snakes", "hissed", "slithered"),
    Animal("snail", "snails", "waved its feelers", "crept"),
    Animal("ladybug", "ladybugs", "spread its wings", "crawled"),
    Animal("butterfly", "butterflies", "fluttered its wings", "fluttered"),
    Animal("bee", "bees", "buzzed", "buzzed"),
    Animal("ant", "ants", "waved its feelers", "marched"),
    Animal("caterpillar", "caterpillars", "wiggled", "inched"),
    Animal("grasshopper", "grasshoppers", "chirped", "jumped"),
    Animal("firefly", "fireflies", "blinked its light", "floated"),
    Animal("dragonfly", "dragonflies", "hummed", "darted"),
    Animal("spider", "spiders", "waved a leg", "crawled"),
    Animal("bat", "bats", "squeaked", "swooped"),
    Animal("monkey", "monkeys", "chattered", "swung"),
    Animal("elephant", "elephants", "trumpeted", "stomped"),
    Animal("giraffe", "giraffes", "hummed", "walked"),
    Animal("zebra", "zebras", "brayed", "galloped"),
    Animal("lion", "lions", "roared", "padded"),
    Animal("tiger", "tigers", "growled", "prowled"),
    Animal("kangaroo", "kangaroos", "grunted", "bounced"),
    Animal("koala", "koalas", "yawned", "climbed"),
    Animal("panda", "pandas", "munched", "rolled"),
    Animal("sloth", "sloths", "yawned", "climbed"),
    Animal("camel", "camels", "grunted", "plodded"),
    Animal("llama", "llamas", "hummed", "trotted"),
    Animal("hippo", "hippos", "snorted", "waded"),
    Animal("rhino", "rhinos", "snorted", "stomped"),
    Animal("gorilla", "gorillas", "grunted", "knuckle-walked"),
    Animal("mole", "moles", "sniffed", "dug its way"),
    Animal("fish", "fish", "blew bubbles", "swam", water=True),
    Animal("goldfish", "goldfish", "blew bubbles", "swam", water=True),
    Animal("crab", "crabs", "clicked its claws", "scuttled", water=True),
    Animal("seal", "seals", "barked", "flopped", water=True),
    Animal("dolphin", "dolphins", "clicked", "leaped", water=True),
    Animal("whale", "whales", "sang", "swam", water=True),
    Animal("octopus", "octopuses", "waved its arms", "swam", water=True),
    Animal("starfish", "starfish", "wiggled an arm", "crept", water=True),
    Animal("seahorse", "seahorses", "bobbed", "drifted", water=True),
    Animal("jellyfish", "jellyfish", "glowed", "drifted", water=True),
    Animal("pelican", "pelicans", "squawked", "flew", water=True),
    Animal("seagull", "seagulls", "squawked", "swooped", water=True),
)

OBJECTS: tuple[Thing, ...] = (
    Thing("ball", "kick it across the grass"),
    Thing("kite", "fly it high in the sky"),
    Thing("book", "read it"),
    Thing("teddy bear", "hug it"),
    Thing("doll", "dress it up"),
    Thing("hat", "wear it"),
    Thing("scarf", "wear it on chilly days"),
    Thing("umbrella", "keep dry under it"),
    Thing("balloon", "hold it up high"),
    Thing("drum", "bang on it"),
    Thing("whistle", "blow it"),
    Thing("flute", "play a song on it"),
    Thing("guitar", "strum it"),
    Thing("trumpet", "play a loud tune on it"),
    Thing("harmonica", "play a tune on it"),
    Thing("xylophone", "tap a tune on it"),
    Thing("bell", "ring it"),
    Thing("crayon", "draw pictures with it"),
    Thing("pencil", "write with it"),
    Thing("paintbrush", "paint with it"),
    Thing("notebook", "draw in it"),
    Thing("sketchbook", "draw in it"),
    Thing("map", "find the way with it"),
    Thing("compass", "find north with it"),
    Thing("flashlight", "shine it in the dark"),
    Thing("lantern", "light the way with it"),
    Thing("telescope", "look at the stars with it"),
    Thing("magnifying glass", "look at tiny things with it"),
    Thing("camera", "take pictures with it"),
    Thing("backpack", "carry snacks in it"),
    Thing("basket", "carry things in it"),
    Thing("bucket", "fill it with sand"),
    Thing("shovel", "dig with it"),
    Thing("spade", "dig holes with it"),
    Thing("watering can", "water the flowers with it"),
    Thing("jump rope", "skip with it"),
    Thing("yo-yo", "spin it up and down"),
    Thing("marble", "roll it along the ground"),
    Thing("puzzle", "put it together"),
    Thing("block", "build towers with it"),
    Thing("robot", "make it walk"),
    Thing("toy car", "race it across the floor"),
    Thing("toy train", "push it along the tracks"),
    Thing("toy boat", "float it in the water"),
    Thing("toy plane", "swoop it through the air"),
    Thing("rocket", "pretend to fly to the moon with it"),
    Thing("truck", "roll it in the dirt"),
    Thing("wagon", "pull it along"),
    Thing("scooter", "ride it down the path"),
    Thing("bike", "ride it"),
    Thing("skateboard", "roll along on it"),
    Thing("sled", "slide down the hill on it"),
    Thing("frisbee", "throw it far"),
    Thing("glove", "catch balls with it"),
    Thing("net", "catch bugs with it"),
    Thing("fishing rod", "go fishing with it"),
    Thing("jar", "keep treasures in it"),
    Thing("box", "keep secrets in it"),
    Thing("shell", "listen to the sea in it"),
    Thing("pebble", "keep it in a pocket"),
    Thing("feather", "tickle noses with it"),
    Thing("leaf", "press it in a book"),
    Thing("acorn", "keep it in a pocket"),
    Thing("pinecone", "roll it on the table"),
    Thing("flower", "smell it"),
    Thing("sunflower", "put it in a vase"),
    Thing("crown", "wear it like a king"),
    Thing("cape", "pretend to be a hero in it"),
    Thing("mask", "pretend to be a tiger in it"),
    Thing("wand", "wave it like a wizard"),
    Thing("sword", "pretend to be a knight with it"),
    Thing("shield", "pretend to be a knight with it"),
    Thing("necklace", "wear it"),
    Thing("bracelet", "wear it"),
    Thing("ring", "wear it"),
    Thing("ribbon", "tie it in a bow"),
    Thing("bow", "wear it on special days"),
    Thing("button", "sew it onto a coat"),
    Thing("sock", "make a puppet out of it"),
    Thing("mitten", "keep warm in the snow"),
    Thing("boot", "splash in puddles with it"),
    Thing("sweater", "wear it on cold days"),
    Thing("jacket", "wear it outside"),
    Thing("raincoat", "wear it in the rain"),
    Thing("blanket", "snuggle under it"),
    Thing("pillow", "nap on it"),
    Thing("cup", "drink from it"),
    Thing("mug", "drink warm milk from it"),
    Thing("bowl", "eat soup from it"),
    Thing("spoon", "stir the soup with it"),
    Thing("plate", "put cookies on it"),
    Thing("lunchbox", "carry lunch in it"),
    Thing("water bottle", "drink from it"),
    Thing("clock", "tell the time with it"),
    Thing("key", "open a door with it"),
    Thing("coin", "save it in a jar"),
    Thing("piggy bank", "save coins in it"),
    Thing("wallet", "keep coins in it"),
    Thing("letter", "read it again and again"),
    Thing("card", "read it again and again"),
    Thing("postcard", "read it again and again"),
    Thing("photo", "look at it"),
    Thing("picture", "hang it on the wall"),
    Thing("painting", "hang it on the wall"),
    Thing("sticker", "stick it on a notebook"),
    Thing("stamp", "stick it on a letter"),
    Thing("puppet", "put on a show with it"),
    Thing("kazoo", "hum into it"),
    Thing("rattle", "shake it"),
    Thing("tambourine", "shake it"),
    Thing("maraca", "shake it to the music"),
    Thing("violin", "play a song on it"),
    Thing("piano", "play a song on it"),
    Thing("spinning top", "spin it on the floor"),
    Thing("kaleidoscope", "look at colors through it"),
    Thing("snow globe", "shake it and watch the snow"),
    Thing("music box", "listen to its song"),
    Thing("clay pot", "keep pencils in it"),
    Thing("candle", "light it at dinner"),
    Thing("rope", "tie things with it"),
    Thing("ladder", "climb up high with it"),
    Thing("hammer", "build a birdhouse with it"),
    Thing("birdhouse", "hang it in a tree"),
    Thing("bird feeder", "hang it in a tree"),
    Thing("tent", "camp in it"),
    Thing("sandcastle mold", "make castles with it"),
    Thing("paper boat", "float it in a puddle"),
    Thing("paper plane", "throw it across the room"),
    Thing("pinwheel", "watch it spin in the wind"),
    Thing("bubble wand", "blow bubbles with it"),
    Thing("piece of chalk", "draw on the sidewalk with it"),
    Thing("globe", "find faraway lands on it"),
    Thing("radio", "listen to songs on it"),
    Thing("lamp", "read by its light"),
    Thing("mirror", "make funny faces in it"),
    Thing("comb", "comb with it every morning"),
    Thing("toothbrush", "brush with it every night"),
    Thing("towel", "dry off with it"),
    Thing("sunhat", "wear it in the sun"),
    Thing("helmet", "wear it on a bike"),
    Thing("medal", "wear it proudly"),
    Thing("trophy", "put it on a shelf"),
    Thing("treasure chest", "keep treasures in it"),
    Thing("dinosaur toy", "make it roar"),
    Thing("toy soldier", "march it across the floor"),
    Thing("race car", "race it across the floor"),
    Thing("fire truck", "push it around the floor"),
    Thing("tractor", "push it through the dirt"),
    Thing("airplane", "swoop it through the air"),
    Thing("paper crown", "wear it like a queen"),
    Thing("pair of glasses", "see better with it"),
    Thing("quilt", "snuggle under it"),
    Thing("stuffed dragon", "hug it at night"),
    Thing("crystal", "hold it up to the light"),
    Thing("star sticker", "stick it on the wall"),
)

PLACES: tuple[Place, ...] = (
    Place("park", "in", ("tall trees", "swings", "green grass")),
    Place("playground", "at", ("slides", "swings", "monkey bars")),
    Place("beach", "at", ("waves", "sand dunes", "rock pools"), water=True),
    Place("lake", "at", ("reeds", "little boats", "lily pads"), water=True),
    Place("river", "by", ("smooth stones", "reeds", "little waterfalls"), water=True),
    Place("pond", "by", ("lily pads", "cattails", "flat rocks"), water=True),
    Place("harbor", "at", ("fishing boats", "ropes", "wooden docks"), water=True),
    Place("seaside", "at", ("waves", "seashells", "sand castles"), water=True),
    Place("forest", "in", ("tall pine trees", "mossy logs", "ferns")),
    Place("woods", "in", ("old oak trees", "fallen leaves", "mushrooms")),
    Place("meadow", "in", ("wildflowers", "tall grass", "bumblebees")),
    Place("farm", "on", ("red barns", "haystacks", "fences")),
    Place("orchard", "in", ("apple trees", "ladders", "baskets of fruit")),
    Place("garden", "in", ("flower beds", "tomato plants", "stepping stones")),
    Place("backyard", "in", ("rose bushes", "swing sets", "garden gnomes")),
    Place("zoo", "at", ("big cages", "ponds", "food stands")),
    Place("library", "at", ("tall shelves", "comfy chairs", "picture books"), indoor=True),
    Place("school", "at", ("desks", "chalkboards", "coat hooks"), indoor=True),
    Place("classroom", "in", ("desks", "paintings", "shelves of books"), indoor=True),
    Place("museum", "at", ("dinosaur bones", "old paintings", "glass cases"), indoor=True),
    Place("market", "at", ("fruit stalls", "flower carts", "busy stands")),
    Place("bakery", "at", ("warm loaves", "cakes", "cookie jars"), indoor=True),
    Place("toy shop", "at", ("shelves of toys", "puppets", "games"), indoor=True),
    Place("town square", "in", ("fountains", "benches", "flower pots")),
    Place("fair", "at", ("rides", "balloons", "food stands")),
    Place("circus", "at", ("bright tents", "clowns", "jugglers")),
    Place("mountain", "on", ("rocky paths", "pine trees", "snowy peaks")),
    Place("hill", "on", ("soft grass", "daisies", "big rocks")),
    Place("valley", "in", ("streams", "wildflowers", "stone walls")),
    Place("campsite", "at", ("tents", "campfires", "logs to sit on")),
    Place("cabin", "at", ("wood stoves", "bunk beds", "snowy windows")),
    Place("island", "on", ("palm trees", "sandy beaches", "big rocks"), water=True),
    Place("jungle", "in", ("vines", "giant leaves", "bright flowers")),
    Place("desert", "in", ("sand dunes", "cactus plants", "big rocks")),
    Place("kitchen", "in", ("pots and pans", "cookie jars", "kitchen chairs"), indoor=True),
    Place("attic", "in", ("old trunks", "dusty boxes", "cobwebs"), indoor=True),
    Place("basement", "in", ("old boxes", "shelves", "paint cans"), indoor=True),
    Place("living room", "in", ("soft couches", "cushions", "rugs"), indoor=True),
    Place("bedroom", "in", ("bunk beds", "toy boxes", "window seats"), indoor=True),
    Place("treehouse", "in", ("wooden walls", "rope ladders", "tiny windows")),
    Place("barn", "in", ("hay bales", "stalls", "old tools")),
    Place("train station", "at", ("benches", "ticket booths", "long tracks")),
    Place("airport", "at", ("big windows", "suitcases", "long hallways"), indoor=True),
    Place("bus stop", "at", ("benches", "street signs", "puddles")),
    Place("swimming pool", "at", ("blue water", "diving boards", "towels"), water=True),
    Place("aquarium", "at", ("big tanks", "glass tunnels", "coral"), water=True, indoor=True),
    Place("lighthouse", "by", ("tall rocks", "crashing waves", "seagulls"), water=True),
    Place("castle", "at", ("tall towers", "stone walls", "flags")),
    Place("village", "in", ("small houses", "cobbled streets", "old wells")),
    Place("city", "in", ("tall buildings", "busy streets", "bright lights")),
    Place("street", "on", ("houses", "lamp posts", "parked cars")),
    Place("corner shop", "at", ("candy jars", "newspapers", "shelves"), indoor=True),
    Place("flower shop", "at", ("roses", "tulips", "buckets of daisies"), indoor=True),
    Place("pet shop", "at", ("fish tanks", "bird cages", "bags of seeds"), indoor=True),
    Place("vegetable patch", "in", ("carrot tops", "pea plants", "pumpkins")),
    Place("cave", "in", ("dark corners", "glittering rocks", "drips of water")),
    Place("bridge", "on", ("railings", "lamps", "boats below")),
    Place("field", "in", ("tall grass", "dandelions", "wooden fences")),
    Place("picnic spot", "at", ("picnic blankets", "shady trees", "baskets")),
    Place("ice rink", "at", ("shiny ice", "skates", "twinkling lights"), indoor=True),
    Place("post office", "at", ("letters", "parcels", "long counters"), indoor=True),
    Place("hospital", "at", ("white walls", "quiet halls", "flowers in vases"), indoor=True),
    Place("greenhouse", "in", ("potted plants", "glass walls", "tomato vines")),
    Place("sunflower field", "in", ("tall sunflowers", "bees", "dirt paths")),
    Place("windmill", "by", ("big sails", "grain sacks", "wooden doors")),
    Place("creek", "by", ("smooth stones", "tadpoles", "mossy logs"), water=True),
    Place("marsh", "in", ("reeds", "puddles", "tall cattails"), water=True),
    Place("porch", "on", ("rocking chairs", "flower pots", "wind chimes")),
    Place("rooftop garden", "in", ("planters", "herbs", "tall chimneys")),
)

PARENTS: tuple[tuple[str, str], ...] = (
    ("mom", "she"),
    ("dad", "he"),
    ("mother", "she"),
    ("father", "he"),
    ("grandma", "she"),
    ("grandpa", "he"),
    ("aunt", "she"),
    ("uncle", "he"),
    ("big sister", "she"),
    ("big brother", "he"),
    ("nana", "she"),
    ("granddad", "he"),
)

HERO_ADJECTIVES: tuple[str, ...] = (
    "little", "young", "small", "happy", "curious", "cheerful", "brave", "kind", "playful",
    "clever", "gentle", "busy", "shy", "friendly", "funny", "smart", "sleepy", "lively",
)  # fmt: skip

OBJECT_ADJECTIVES: tuple[str, ...] = (
    "little", "big", "new", "old", "shiny", "special", "tiny", "bright",
    "pretty", "lovely", "fancy", "beautiful", "plain", "lucky", "precious", "small",
    "striped", "spotted",
)  # fmt: skip

COLORS: tuple[str, ...] = (
    "red", "blue", "green", "yellow", "orange", "purple", "pink", "white", "black", "brown",
    "gold", "silver", "gray", "golden", "sky-blue", "bright red",
)  # fmt: skip

TRAITS: tuple[str, ...] = (
    "very curious", "kind to everyone", "a little shy", "always happy", "full of ideas",
    "very brave", "a good helper", "very funny", "very careful", "quick on {his} feet",
    "always hungry", "a big dreamer", "very patient", "very gentle", "full of energy",
)  # fmt: skip

LIKES: tuple[str, ...] = (
    "draw pictures", "sing songs", "run fast", "look at the stars", "play outside",
    "read stories", "dance", "help {his} {parent}", "climb trees", "build forts",
    "bake cookies", "splash in puddles", "play games", "collect shells", "plant flowers",
    "ride {his} bike", "make things", "tell jokes", "count clouds", "play hide and seek",
    "jump in leaves", "watch the birds", "paint", "play music", "explore", "make friends",
    "swing high", "fly paper planes", "pick berries", "hum little tunes",
)  # fmt: skip

ACTIVITIES: tuple[str, ...] = (
    "played tag", "built a tall tower", "sang silly songs", "played hide and seek",
    "had a race", "looked for shiny stones", "made up a dance", "drew funny pictures",
    "counted the clouds", "told funny stories", "played catch", "had a picnic",
    "played a clapping game", "made crowns out of leaves", "played a guessing game",
    "hopped like frogs", "pretended to be pirates", "looked for bugs", "made a fort",
    "took turns on the swing", "skipped along the path", "watched the clouds go by",
    "played follow the leader", "made up a song", "built a little house of sticks",
    "searched for four-leaf clovers", "pretended to be explorers", "played house",
    "had a tea party", "played I spy",
)  # fmt: skip

FOODS: tuple[str, ...] = (
    "apple slices", "cookies", "cheese sandwiches", "warm soup", "berries", "muffins",
    "grapes", "crackers", "carrot sticks", "pancakes", "banana bread", "lemonade",
    "hot cocoa", "popcorn", "oranges", "strawberries", "peanut butter sandwiches",
    "little cakes", "rice balls", "pears", "cinnamon rolls", "toast with honey",
    "watermelon", "pumpkin pie", "noodles", "corn on the cob", "plums", "blueberry pie",
    "fresh bread", "yogurt with fruit", "cherries", "pretzels", "oatmeal cookies",
    "sweet potatoes", "tomato soup", "cupcakes", "pizza", "fruit salad", "dumplings",
    "carrot cake",
)  # fmt: skip

GLAD: tuple[str, ...] = (
    "happy", "glad", "proud", "excited", "joyful", "thrilled", "cheerful", "delighted",
)  # fmt: skip

SAD: tuple[str, ...] = (
    "sad", "upset", "worried", "unhappy", "gloomy", "miserable", "lonely", "cross",
)  # fmt: skip

SCARED: tuple[str, ...] = (
    "scared", "afraid", "frightened", "terrified",
)  # fmt: skip

TIMES: tuple[tuple[str, str], ...] = (
    ("One sunny morning", "sun"),
    ("One warm summer day", "sun"),
    ("One hot afternoon", "sun"),
    ("One rainy afternoon", "rain"),
    ("On a wet Monday", "rain"),
    ("One cold winter day", "snow"),
    ("One snowy morning", "snow"),
    ("One windy afternoon", "wind"),
    ("One breezy day", "wind"),
    ("One bright spring morning", "spring"),
    ("On the first day of spring", "spring"),
    ("On a crisp autumn day", "autumn"),
    ("One cool fall morning", "autumn"),
    ("One evening", "evening"),
    ("Late one afternoon", "evening"),
    ("On a cloudy day", "cloud"),
    ("One foggy morning", "cloud"),
    ("Early one morning", "any"),
    ("Last Saturday", "any"),
    ("One Sunday afternoon", "any"),
    ("One quiet morning", "any"),
    ("After breakfast one day", "any"),
    ("One day", "any"),
    ("The next morning", "any"),
)

SKIES: dict[str, tuple[str, ...]] = {
    "sun": (
        "The sun was shining.", "The sky was blue and clear.", "It was warm and bright.",
        "The sun felt warm and golden.", "There was not a single cloud in the sky.",
    ),
    "rain": (
        "Little raindrops were falling.", "Puddles covered the ground.",
        "The air smelled like rain.", "Rain tapped softly on every leaf.",
    ),
    "snow": (
        "Snow covered the ground.", "The cold air made little clouds of breath.",
        "Icicles hung from the roofs.", "Soft white flakes drifted down.",
    ),
    "wind": (
        "A strong wind was blowing.", "The wind made the trees sway.",
        "Leaves danced in the wind.", "The wind whistled past.",
    ),
    "spring": (
        "Flowers were starting to bloom.", "Birds were singing.",
        "The grass was fresh and green.", "Baby leaves were opening on the trees.",
    ),
    "autumn": (
        "The leaves were red and gold.", "The air was cool and crisp.",
        "Leaves crunched underfoot.", "Orange leaves floated down from the trees.",
    ),
    "evening": (
        "The sky was pink and orange.", "The sun was going down.",
        "Long shadows stretched across the ground.", "The first stars were coming out.",
    ),
    "cloud": (
        "Big gray clouds filled the sky.", "The air was cool and damp.",
        "Everything looked soft and gray.", "The clouds hung low and heavy.",
    ),
    "any": (
        "It was a lovely day.", "Big white clouds floated by.", "Everything was calm and quiet.",
        "Birds were singing in the trees.", "The air smelled fresh and sweet.",
    ),
}  # fmt: skip

FRESH: dict[str, tuple[str, ...]] = {
    "Then": ("Then", "Soon", "After a while", "A moment later", "Just then", "Before long"),
    "smiled": ("smiled", "grinned", "beamed", "laughed"),
}

HOMES: tuple[str, ...] = (
    "small house", "yellow house", "cozy cottage", "little house with a red door",
    "tall apartment building", "blue house", "house on a hill", "farmhouse",
    "little cabin", "white house with green windows", "house by the road",
    "house with a big garden",
)  # fmt: skip

NUMBERS: tuple[str, ...] = ("two", "three", "four", "five", "six", "seven")
