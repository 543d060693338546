-- catalog's reference data and tours, with the full-text search document of each tour.

-- Accent-insensitive search ("guidee" finds "guidée"). A trusted extension: the database owner
-- may create it.
CREATE EXTENSION IF NOT EXISTS unaccent;

CREATE TABLE categories (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    slug        text NOT NULL UNIQUE,
    description text,
    icon        text,
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE destinations (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    slug        text NOT NULL UNIQUE,
    country     text NOT NULL,
    region      text,
    description text,
    image       text,
    latitude    double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude   double precision CHECK (longitude BETWEEN -180 AND 180),
    is_active   boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT destinations_coordinates_check CHECK ((latitude IS NULL) = (longitude IS NULL))
);

CREATE TABLE tours (
    id               uuid PRIMARY KEY,
    -- ICU root collation: "Éco-lodge" sorts beside "Eco", not after "Z" as in C.UTF-8.
    title            text COLLATE "und-x-icu" NOT NULL,
    slug             text NOT NULL UNIQUE,
    summary          text,
    description      text NOT NULL,
    -- Money in minor units (8999 = 89.99 EUR), as Stripe counts it.
    price            integer NOT NULL CHECK (price >= 0),
    currency         text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    duration         integer NOT NULL CHECK (duration >= 1),
    duration_unit    text NOT NULL CHECK (duration_unit IN ('hours', 'days', 'weeks')),
    difficulty       text NOT NULL CHECK (difficulty IN ('easy', 'medium', 'difficult')),
    max_group_size   integer NOT NULL CHECK (max_group_size >= 1),
    -- 0 means "not rated yet" (the original refused it and so could create no tour at all).
    ratings_average  numeric(3, 2) NOT NULL DEFAULT 0 CHECK (ratings_average BETWEEN 0 AND 5),
    ratings_quantity integer NOT NULL DEFAULT 0 CHECK (ratings_quantity >= 0),
    image_cover      text,
    images           text[] NOT NULL DEFAULT '{}',
    -- Reference data is only ever soft-deleted, so these never dangle.
    category_id      uuid REFERENCES categories (id),
    destination_id   uuid REFERENCES destinations (id),
    is_active        boolean NOT NULL DEFAULT true,
    -- Kept by the tours_search trigger below; what `q` searches.
    search           tsvector NOT NULL DEFAULT '',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX tours_search_idx ON tours USING gin (search);
CREATE INDEX tours_category_id_idx ON tours (category_id);
CREATE INDEX tours_destination_id_idx ON tours (destination_id);
CREATE INDEX tours_price_idx ON tours (price);

-- The search document: title, destination (name, region, country), summary, description, weighted
-- in that order for ranking. The 'simple' configuration does not stem, so French and English
-- titles are found as typed; unaccent folds accents on both sides (the query does it too).
CREATE FUNCTION tours_set_search() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    place text;
BEGIN
    SELECT concat_ws(' ', d.name, d.region, d.country) INTO place
      FROM destinations d WHERE d.id = NEW.destination_id;
    NEW.search := setweight(to_tsvector('simple', unaccent(NEW.title)), 'A')
               || setweight(to_tsvector('simple', unaccent(coalesce(place, ''))), 'B')
               || setweight(to_tsvector('simple', unaccent(coalesce(NEW.summary, ''))), 'C')
               || setweight(to_tsvector('simple', unaccent(NEW.description)), 'D');
    RETURN NEW;
END
$$;

CREATE TRIGGER tours_search BEFORE INSERT OR UPDATE OF title, summary, description, destination_id
    ON tours FOR EACH ROW EXECUTE FUNCTION tours_set_search();

-- A renamed destination re-indexes its tours: naming destination_id in SET fires tours_search.
CREATE FUNCTION destinations_reindex_tours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE tours SET destination_id = destination_id WHERE destination_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER destinations_reindex_tours AFTER UPDATE OF name, region, country ON destinations
    FOR EACH ROW
    WHEN ((OLD.name, OLD.region, OLD.country) IS DISTINCT FROM (NEW.name, NEW.region, NEW.country))
    EXECUTE FUNCTION destinations_reindex_tours();
