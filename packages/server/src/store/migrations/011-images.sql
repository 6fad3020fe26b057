-- Images (issue 12): the library of ready disks under $DATA_DIR/images/ (always qcow2), and which
-- managed disks are qcow2 overlays on one (a disk made from an image with linkedDisk): an image
-- with such a disk cannot be deleted; deleting the disk frees it.
CREATE TABLE images (
  name          TEXT PRIMARY KEY,
  path          TEXT NOT NULL UNIQUE,
  virtual_size  INTEGER NOT NULL,
  size          INTEGER NOT NULL,
  sha256        TEXT NOT NULL,
  source        TEXT NOT NULL,
  created_at    TEXT NOT NULL
);
CREATE TABLE image_chain (
  disk_id       TEXT PRIMARY KEY REFERENCES disks(id) ON DELETE CASCADE,
  image_name    TEXT NOT NULL REFERENCES images(name) ON DELETE RESTRICT,
  backing_path  TEXT NOT NULL,
  created_at    TEXT NOT NULL
);
CREATE INDEX image_chain_image ON image_chain(image_name);
