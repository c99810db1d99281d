using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Tokenization;

namespace MLNetTransformerExtensions.Training.Pretraining;

/// <summary>What a pretraining run teaches, and so which kind of model it builds.</summary>
public enum PretrainingKind
{
    /// <summary>
    /// An encoder (BERT from scratch; BERT, RoBERTa or DistilBERT when continuing) trained by masked-language modelling:
    /// 15 % of the tokens are chosen, of which 80 % become the mask token, 10 % a random token and 10 % stay, and the
    /// model predicts the originals.
    /// </summary>
    Encoder,

    /// <summary>A decoder (GPT-2) trained by causal language modelling: each token predicts the next.</summary>
    Decoder,
}

/// <summary>
/// The shape of a model built from scratch. The presets are small on purpose: they train on a laptop's CPU in minutes
/// to hours. Parameter counts depend on the vocabulary; with each preset's own vocabulary size they are:
/// <list type="table">
/// <listheader><term>preset</term><description>layers × hidden, heads, feed-forward, positions, vocabulary: parameters (encoder / decoder)</description></listheader>
/// <item><term><see cref="Tiny"/></term><description>2 × 128, 2 heads, 512, 128 positions, 8,000 tokens: 1.46 M / 1.44 M</description></item>
/// <item><term><see cref="Mini"/></term><description>4 × 256, 4 heads, 1,024, 128 positions, 16,000 tokens: 7.37 M / 7.29 M</description></item>
/// <item><term><see cref="Small"/></term><description>6 × 512, 8 heads, 2,048, 256 positions, 32,000 tokens: 35.7 M / 35.4 M</description></item>
/// </list>
/// </summary>
/// <param name="Name">The preset's name, as the CLI's <c>--preset</c> spells it.</param>
/// <param name="Layers">Transformer layers.</param>
/// <param name="HiddenSize">Hidden size.</param>
/// <param name="Heads">Attention heads per layer.</param>
/// <param name="IntermediateSize">Feed-forward inner size.</param>
/// <param name="MaxPositions">Rows of the position table: the longest sequence the model reads.</param>
/// <param name="VocabularySize">Tokens in the vocabulary trained for it when no tokenizer is given.</param>
public sealed record ModelSize(string Name, int Layers, int HiddenSize, int Heads, int IntermediateSize, int MaxPositions, int VocabularySize)
{
    /// <summary>2 layers × 128, 2 heads, feed-forward 512, 128 positions, 8,000 tokens.</summary>
    public static ModelSize Tiny { get; } = new("tiny", 2, 128, 2, 512, 128, 8000);

    /// <summary>4 layers × 256, 4 heads, feed-forward 1,024, 128 positions, 16,000 tokens.</summary>
    public static ModelSize Mini { get; } = new("mini", 4, 256, 4, 1024, 128, 16000);

    /// <summary>6 layers × 512, 8 heads, feed-forward 2,048, 256 positions, 32,000 tokens.</summary>
    public static ModelSize Small { get; } = new("small", 6, 512, 8, 2048, 256, 32000);

    /// <summary>The presets, smallest first.</summary>
    public static IReadOnlyList<ModelSize> Presets { get; } = [Tiny, Mini, Small];

    /// <summary>The preset of a name (<c>tiny</c>, <c>mini</c>, <c>small</c>; any case).</summary>
    /// <param name="name">The name.</param>
    /// <returns>The preset.</returns>
    /// <exception cref="ArgumentException">No preset has that name.</exception>
    public static ModelSize FromName(string name) =>
        Presets.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
        ?? throw new ArgumentException($"There is no model preset '{name}'; use one of {string.Join(", ", Presets.Select(p => p.Name))}.", nameof(name));

    /// <summary>
    /// The config of a new model of this size in the tokenizer's family, with HuggingFace's defaults for the rest:
    /// BERT (RoBERTa for a RoBERTa tokenizer) with 2 token types, or GPT-2 with <c>gelu_new</c>; dropout 0.1.
    /// </summary>
    internal TransformerConfig CreateConfig(TransformerTokenizer tokenizer)
    {
        var json = tokenizer.Family switch
        {
            TokenizerFamily.Gpt2 => new JsonObject
            {
                ["architectures"] = new JsonArray("GPT2LMHeadModel"),
                ["model_type"] = "gpt2",
                ["vocab_size"] = tokenizer.VocabularySize,
                ["n_positions"] = MaxPositions,
                ["n_embd"] = HiddenSize,
                ["n_layer"] = Layers,
                ["n_head"] = Heads,
                ["n_inner"] = IntermediateSize,
                ["activation_function"] = "gelu_new",
                ["resid_pdrop"] = 0.1,
                ["embd_pdrop"] = 0.1,
                ["attn_pdrop"] = 0.1,
                ["layer_norm_epsilon"] = 1e-5,
                ["initializer_range"] = 0.02,
                ["scale_attn_weights"] = true,
                ["scale_attn_by_inverse_layer_idx"] = false,
                ["reorder_and_upcast_attn"] = false,
                ["summary_type"] = "cls_index",
                ["summary_use_proj"] = true,
                ["summary_activation"] = null,
                ["summary_proj_to_labels"] = true,
                ["summary_first_dropout"] = 0.1,
                ["bos_token_id"] = tokenizer.EosTokenId,
                ["eos_token_id"] = tokenizer.EosTokenId,
                ["pad_token_id"] = tokenizer.PadTokenId,
                ["tie_word_embeddings"] = true,
                ["use_cache"] = true,
                ["torch_dtype"] = "float32",
            },
            var family => new JsonObject
            {
                ["architectures"] = new JsonArray(family == TokenizerFamily.Roberta ? "RobertaForMaskedLM" : "BertForMaskedLM"),
                ["model_type"] = family == TokenizerFamily.Roberta ? "roberta" : "bert",
                ["vocab_size"] = tokenizer.VocabularySize,
                ["hidden_size"] = HiddenSize,
                ["num_hidden_layers"] = Layers,
                ["num_attention_heads"] = Heads,
                ["intermediate_size"] = IntermediateSize,
                ["hidden_act"] = "gelu",
                ["hidden_dropout_prob"] = 0.1,
                ["attention_probs_dropout_prob"] = 0.1,
                // RoBERTa's positions start after its padding index.
                ["max_position_embeddings"] = family == TokenizerFamily.Roberta ? MaxPositions + tokenizer.PadTokenId + 1 : MaxPositions,
                ["type_vocab_size"] = family == TokenizerFamily.Roberta ? 1 : 2,
                ["initializer_range"] = 0.02,
                ["layer_norm_eps"] = family == TokenizerFamily.Roberta ? 1e-5 : 1e-12,
                ["pad_token_id"] = tokenizer.PadTokenId,
                ["bos_token_id"] = tokenizer.ClsTokenId,
                ["eos_token_id"] = tokenizer.SepTokenId,
                ["position_embedding_type"] = "absolute",
                ["classifier_dropout"] = null,
                ["tie_word_embeddings"] = true,
                ["use_cache"] = true,
                ["torch_dtype"] = "float32",
            },
        };
        return TransformerConfig.Parse(json, $"the {Name} preset's config");
    }

    internal void Validate()
    {
        static void Check(bool ok, string name, int value, string expected)
        {
            if (!ok)
            {
                throw new ArgumentOutOfRangeException(name, value, $"{name} {value} must be {expected}.");
            }
        }

        Check(Layers >= 1, nameof(Layers), Layers, "at least 1");
        Check(HiddenSize >= 1, nameof(HiddenSize), HiddenSize, "at least 1");
        Check(Heads >= 1 && HiddenSize % Heads == 0, nameof(Heads), Heads, $"at least 1 and divide the hidden size {HiddenSize}");
        Check(IntermediateSize >= 1, nameof(IntermediateSize), IntermediateSize, "at least 1");
        Check(MaxPositions >= 4, nameof(MaxPositions), MaxPositions, "at least 4");
        Check(VocabularySize >= 1, nameof(VocabularySize), VocabularySize, "at least 1");
    }
}

/// <summary>
/// Hyper-parameters of <see cref="Pretrainer"/>. The optimiser and schedule are fine-tuning's (AdamW without decay on
/// biases and LayerNorm weights, linear warm-up then linear decay, gradient clipping).
/// </summary>
public sealed record PretrainingOptions
{
    /// <summary>Masked-LM encoder or causal-LM decoder.</summary>
    public PretrainingKind Kind { get; init; } = PretrainingKind.Encoder;

    /// <summary>The model built from scratch (ignored with <see cref="From"/>).</summary>
    public ModelSize Size { get; init; } = ModelSize.Tiny;

    /// <summary>
    /// Continue pretraining this model (domain adaptation) instead of starting from scratch: a HuggingFace folder, hub id
    /// or built-in model name, resolved by <see cref="Sources.ModelLocator"/>. Its config and tokenizer are kept. An encoder
    /// checkpoint without a masked-LM head gets a fresh one (reported in <see cref="PretrainingResult.LoadReport"/>).
    /// </summary>
    public string? From { get; init; }

    /// <summary>
    /// From scratch: a folder with the tokenizer to use (one the <c>vocab</c> command wrote, or any model folder). Null
    /// trains one on the input files: WordPiece for encoders, byte-level BPE for decoders, of <see cref="VocabularySize"/> tokens.
    /// </summary>
    public string? Tokenizer { get; init; }

    /// <summary>Size of the vocabulary trained when no tokenizer is given; null for the preset's.</summary>
    public int? VocabularySize { get; init; }

    /// <summary>Optimiser steps to take; null to run <see cref="Epochs"/> passes instead. Give at most one of the two.</summary>
    public int? Steps { get; init; }

    /// <summary>Passes over the training text; null with <see cref="Steps"/>, and 1 when neither is given.</summary>
    public int? Epochs { get; init; }

    /// <summary>Sequences per optimiser step.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Peak learning rate; null for 5e-4 from scratch and 5e-5 when continuing a pretrained model.</summary>
    public double? LearningRate { get; init; }

    /// <summary>Decoupled weight decay; never applied to biases and LayerNorm weights.</summary>
    public double WeightDecay { get; init; } = 0.01;

    /// <summary>Share of the steps spent warming the learning rate up linearly from 0.</summary>
    public double WarmupRatio { get; init; } = 0.05;

    /// <summary>Gradients are clipped to this global L2 norm; 0 disables clipping.</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>
    /// The number format of the training steps: float32 (default), bfloat16 mixed precision (float32 master weights and
    /// AdamW state; see <see cref="TrainingPrecision.BFloat16"/>) or <see cref="TrainingPrecision.Auto"/>. Validation,
    /// checkpoints and the exported model are float32 either way, so a run may resume in another precision.
    /// </summary>
    public TrainingPrecision Precision { get; init; } = TrainingPrecision.Float32;

    /// <summary>
    /// Tokens per packed sequence, special tokens included; null for the preset's positions from scratch, and 128
    /// (capped by the model) when continuing.
    /// </summary>
    public int? MaxLength { get; init; }

    /// <summary>Encoders: the share of tokens the masked-LM objective predicts (BERT's 15 %).</summary>
    public double MaskProbability { get; init; } = 0.15;

    /// <summary>Seed of initialisation, shuffling, masking and dropout: the same seed and inputs give the same model.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>
    /// Write a checkpoint (model, optimiser state, data position) every this many steps; 0 writes one only at the end
    /// (and when cancelled). Checkpoints make <see cref="Resume"/> possible.
    /// </summary>
    public int CheckpointEvery { get; init; } = 500;

    /// <summary>Measure the validation loss every this many steps, besides each epoch's end and the run's end; 0 for no more.</summary>
    public int EvaluateEvery { get; init; }

    /// <summary>
    /// Held-out text to validate on. Null holds out every <see cref="HoldOutEvery"/>-th packed sequence of the input
    /// instead (never trained on).
    /// </summary>
    public IReadOnlyList<string>? ValidationFiles { get; init; }

    /// <summary>Without <see cref="ValidationFiles"/>: every this many packed sequences, one is held out for validation (20: 5 %).</summary>
    public int HoldOutEvery { get; init; } = 20;

    /// <summary>At most this many held-out sequences are evaluated, so validation stays quick on a large corpus.</summary>
    public int MaxValidationSequences { get; init; } = 256;

    /// <summary>Training sequences are drawn at random from a buffer of this many, refilled as the files stream by.</summary>
    public int ShuffleBuffer { get; init; } = 4096;

    /// <summary>
    /// Continue the run whose checkpoint is in the output folder: same step, optimiser state, data position and random
    /// state, so the result is the same as a run that was never stopped. The options and inputs must be the same.
    /// </summary>
    public bool Resume { get; init; }

    /// <summary>Checks every value and says which is wrong.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A value is out of range.</exception>
    /// <exception cref="ArgumentException">Options contradict each other.</exception>
    public void Validate()
    {
        static void Check(bool ok, string name, object value, string expected)
        {
            if (!ok)
            {
                throw new ArgumentOutOfRangeException(name, value, $"{name} {value} must be {expected}.");
            }
        }

        Check(Enum.IsDefined(Kind), nameof(Kind), Kind, "Encoder or Decoder");
        ArgumentNullException.ThrowIfNull(Size);
        Size.Validate();
        if (Steps is not null && Epochs is not null)
        {
            throw new ArgumentException($"Give {nameof(Steps)} or {nameof(Epochs)}, not both: one of them sets the length of the run.");
        }

        if (From is not null && Tokenizer is not null)
        {
            throw new ArgumentException($"{nameof(Tokenizer)} is for a model built from scratch; a model continued with {nameof(From)} keeps its own tokenizer.");
        }

        if (From is not null && VocabularySize is not null)
        {
            throw new ArgumentException($"{nameof(VocabularySize)} sizes a new vocabulary; a model continued with {nameof(From)} keeps its own.");
        }

        Check(Steps is null or >= 1, nameof(Steps), Steps ?? 0, "at least 1");
        Check(Epochs is null or >= 1, nameof(Epochs), Epochs ?? 0, "at least 1");
        Check(VocabularySize is null or >= 1, nameof(VocabularySize), VocabularySize ?? 0, "at least 1");
        Check(BatchSize >= 1, nameof(BatchSize), BatchSize, "at least 1");
        Check(LearningRate is null || (LearningRate > 0 && double.IsFinite(LearningRate.Value)), nameof(LearningRate), LearningRate ?? 0, "a positive number");
        Check(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "0 or more");
        Check(WarmupRatio is >= 0 and < 1, nameof(WarmupRatio), WarmupRatio, "in [0, 1)");
        Check(MaxGradNorm >= 0 && double.IsFinite(MaxGradNorm), nameof(MaxGradNorm), MaxGradNorm, "0 (off) or more");
        Check(MaxLength is null or >= 4, nameof(MaxLength), MaxLength ?? 0, "at least 4");
        Check(MaskProbability is > 0 and < 1, nameof(MaskProbability), MaskProbability, "in (0, 1)");
        Check(CheckpointEvery >= 0, nameof(CheckpointEvery), CheckpointEvery, "0 (only at the end) or more");
        Check(EvaluateEvery >= 0, nameof(EvaluateEvery), EvaluateEvery, "0 (only at epoch ends) or more");
        Check(HoldOutEvery >= 2, nameof(HoldOutEvery), HoldOutEvery, "at least 2");
        Check(MaxValidationSequences >= 0, nameof(MaxValidationSequences), MaxValidationSequences, "0 (no validation) or more");
        Check(ShuffleBuffer >= 1, nameof(ShuffleBuffer), ShuffleBuffer, "at least 1");
        Check(Enum.IsDefined(Precision), nameof(Precision), Precision, "Float32, BFloat16 or Auto");
    }
}

/// <summary>The stages of a pretraining run, in order.</summary>
public enum PretrainingStage
{
    /// <summary>Training a vocabulary on the input (from scratch without a tokenizer); progress in bytes, then in vocabulary entries.</summary>
    TrainingTokenizer,

    /// <summary>Reading the input once to count the training sequences and collect the held-out ones; progress in bytes.</summary>
    ReadingCorpus,

    /// <summary>Resuming: re-reading the sequences the checkpoint had already trained on; progress in bytes.</summary>
    FastForwarding,

    /// <summary>Optimiser steps; progress in steps.</summary>
    Training,

    /// <summary>A validation loss was just measured (the validation fields are set).</summary>
    Validated,

    /// <summary>A checkpoint was just written.</summary>
    Checkpointed,

    /// <summary>Writing the HuggingFace folder.</summary>
    Exporting,
}

/// <summary>Where a pretraining run is, reported after each step and at each stage.</summary>
/// <param name="Stage">The stage.</param>
/// <param name="Step">Optimiser steps done (counting those before a resume).</param>
/// <param name="TotalSteps">Steps planned; 0 until known.</param>
/// <param name="Epoch">1-based pass over the training text.</param>
/// <param name="Loss">Mean training loss of the last 20 steps (nats per predicted token).</param>
/// <param name="LearningRate">The learning rate of the last step.</param>
/// <param name="TokensPerSecond">Training throughput of this session: real (non-padding) tokens per second of training.</param>
/// <param name="Completed">Stages before training: bytes read so far (while training the vocabulary: entries merged, once the text is counted).</param>
/// <param name="Total">Stages before training: bytes to read (vocabulary entries to reach).</param>
/// <param name="ValidationLoss">Mean loss per predicted token on the held-out sequences, when just measured.</param>
/// <param name="ValidationPerplexity">exp(<paramref name="ValidationLoss"/>).</param>
public sealed record PretrainingProgress(
    PretrainingStage Stage,
    int Step,
    int TotalSteps,
    int Epoch,
    double Loss,
    double LearningRate,
    double TokensPerSecond,
    long Completed = 0,
    long Total = 0,
    double? ValidationLoss = null,
    double? ValidationPerplexity = null)
{
    /// <summary>Something the user should know, given once (for example that bfloat16 was asked for on a CPU where it is slower); null otherwise.</summary>
    public string? Notice { get; init; }
}
