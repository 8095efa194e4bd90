"""Paper-scale STR: TPS-ResNet-BiLSTM-Attn, 36 characters, max length 25, 32x100 grey input.

Meant for a GPU and real data (MJSynth/SynthText LMDBs, mixed 0.5/0.5 per batch):
  python -m tfls.main --task=str --config=configs/str_paper.py --workdir=workdir/str_paper \
      --config.data.train_lmdb=/data/MJ,/data/ST --config.data.train_lmdb_ratios=0.5,0.5 \
      --config.data.eval_lmdb=/data/IIIT5k_3000,/data/SVT,/data/IC13_857
Without LMDBs it trains on the synthetic renderer with every distortion on.
"""

from configs import str as small


def get_config():
    config = small.get_config()
    config.train.steps = 300000
    config.train.batch_size = 192
    config.train.optimizer = "adadelta"
    config.train.learning_rate = 1.0
    config.train.clipnorm = 5.0
    config.train.eval_every = 2000
    config.train.checkpoint_every = 2000
    config.train.log_every = 200

    s = config.surrogate
    s.pretrain_steps = 20000
    s.local_weight = 0.5  # the paper's global + local pairs (the small default tunes on local pairs only)
    s.batch_size = 256
    s.eval_pairs = 5000
    s.embedding_filters = (128, 128, 128, 128)
    s.embedding_dim = 128
    s.max_edits = 6

    config.tune.steps = 20000
    config.tune.learning_rate = 1e-4
    # the paper's alternation (phi on every step, any distribution strategy) with its own global batch
    config.tune.surrogate_every = 1
    config.tune.global_batch_size = 0  # 0: surrogate.batch_size (256 here), not the 2-core default's 32

    d = config.data = small.data_config(max_length=25)
    d.corpus_size = 50000
    d.random_fraction = 0.2
    d.random_max_length = 25
    d.distortions.update(
        {"rotation_deg": 5.0, "perspective": 0.1, "curve": 0.15, "blur": 0.3, "noise": 8.0, "jpeg": 0.3, "crop": 0.5}
    )
    d.train_pool = 0
    d.scene_fraction = 0.0  # scene crops mix with a word pool; at paper scale SynthText (train_lmdb) supplies them
    d.render_parallel_calls = 8
    d.eval_size = 3000

    m = config.model
    m.transformation = "tps"
    m.feature_extractor = "resnet"
    m.sequence_model = "bilstm"
    m.prediction = "attn"
    m.channels = (64, 128, 256, 512)
    m.resnet_blocks = (1, 2, 5, 3)
    m.hidden = 256
    m.num_fiducials = 20
    config.eval.batch_size = 256
    return config
