using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Modeling;
using MLNetTransformerExtensions.Runtime;
using MLNetTransformerExtensions.Tokenization;
using MLNetTransformerExtensions.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Benchmarks;

/// <summary>
/// Measures what a model costs on this machine, so hardware can be sized and commits compared: inference and
/// fine-tuning steps on random tokens, the fp32 matmul rate libtorch reaches here (the ceiling for model FLOP
/// utilisation), and tokenization of real text. Timings are wall-clock, single process, at libtorch's current thread
/// count (<c>torch.set_num_threads</c>); warm-up steps are run first and not timed.
/// </summary>
public static class ModelBenchmark
{
    /// <summary>The names <see cref="Preset"/> accepts.</summary>
    public static IReadOnlyList<string> PresetNames { get; } = ["bert-mini", "gpt2-mini", "nasbert-size"];

    /// <summary>
    /// The configs of the project's reference measurements: <c>bert-mini</c> (4 layers, hidden 256, 4 heads,
    /// intermediate 1024, vocabulary 30522), <c>gpt2-mini</c> (4 layers, hidden 256, 4 heads, vocabulary 50257), and
    /// <c>nasbert-size</c>, a BERT of the size of ML.NET's NAS-BERT text classifier (4 layers, hidden 192, 3 heads,
    /// intermediate 384, 16384 embedding rows, 512 positions: 4.47 M parameters against NAS-BERT's 4.48 M, and
    /// 2.36 M matmul FLOPs per token against its 2.42 M, attention scores alike). All keep HuggingFace's defaults
    /// otherwise (dropout 0.1, two labels).
    /// </summary>
    /// <param name="name">One of <see cref="PresetNames"/>.</param>
    /// <returns>The config, or null when <paramref name="name"/> is not a preset.</returns>
    public static TransformerConfig? Preset(string name) =>
        PresetJson(name) is { } json ? TransformerConfig.Parse(json, $"the {name} preset") : null;

    /// <summary>A preset's config.json, or null when <paramref name="name"/> is not a preset.</summary>
    internal static JsonObject? PresetJson(string name) => name switch
    {
        "bert-mini" => new JsonObject
        {
            ["model_type"] = "bert",
            ["vocab_size"] = 30522,
            ["hidden_size"] = 256,
            ["num_hidden_layers"] = 4,
            ["num_attention_heads"] = 4,
            ["intermediate_size"] = 1024,
            ["max_position_embeddings"] = 512,
        },
        "gpt2-mini" => new JsonObject
        {
            ["model_type"] = "gpt2",
            ["vocab_size"] = 50257,
            ["n_embd"] = 256,
            ["n_layer"] = 4,
            ["n_head"] = 4,
            ["n_positions"] = 1024,
        },

        // ML.NET's NAS-BERT (Microsoft.ML.TorchSharp, NasBert): 24 cells, 12 of them identities; at hidden 192, 4
        // self-attention cells (3 heads) and 8 separable-convolution cells (kernels 3, 5, 7), each convolution cell two
        // depthwise + pointwise 192×192 pairs; embeddings of 64 dimensions over RoBERTa's 50265 tokens, projected to
        // 192; 512 positions. The 8 convolution cells' pointwise weights equal 4 feed-forward blocks of 192→384→192,
        // so 4 BERT layers of hidden 192 and intermediate 384 carry the same dense weights; 16384 embedding rows of 192
        // hold as many values as NAS-BERT's 50265 × 64 table.
        "nasbert-size" => new JsonObject
        {
            ["model_type"] = "bert",
            ["vocab_size"] = 16384,
            ["hidden_size"] = 192,
            ["num_hidden_layers"] = 4,
            ["num_attention_heads"] = 3,
            ["intermediate_size"] = 384,
            ["max_position_embeddings"] = 512,
        },
        _ => null,
    };

    /// <summary>
    /// Matmul FLOPs of one forward pass over one sequence of <paramref name="sequenceLength"/> tokens, counted from the
    /// config (T tokens, L layers, hidden H, intermediate I; 2 FLOPs per multiply-add):
    /// <code>
    /// 2·T·L·(4·H² + 2·H·I)   Q, K, V and output projections, and the two feed-forward projections
    /// + 4·T²·H·L             attention scores Q·Kᵀ and the weighted sum of values, over all heads
    /// </code>
    /// Embedding lookups, biases, LayerNorm, softmax, activations and the classification head (one token per
    /// sequence) are left out. Causal attention is counted in full, as MFU figures conventionally do. A training step
    /// costs about three forward passes (the backward pass computes two matmuls per forward matmul).
    /// </summary>
    /// <param name="config">The model's config (the same formula holds for BERT, RoBERTa, DistilBERT and GPT-2).</param>
    /// <param name="sequenceLength">Tokens per sequence.</param>
    /// <returns>FLOPs per sequence.</returns>
    public static double ForwardFlopsPerSequence(TransformerConfig config, int sequenceLength)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentOutOfRangeException.ThrowIfLessThan(sequenceLength, 1);
        double t = sequenceLength, h = config.HiddenSize, i = config.IntermediateSize, layers = config.NumLayers;
        var projections = 2 * t * layers * (4 * h * h + 2 * h * i);
        var attention = 4 * t * t * h * layers;
        return projections + attention;
    }

    /// <summary>The number of trainable values in a model (each shared tensor once).</summary>
    /// <param name="model">The model.</param>
    /// <returns>The parameter count.</returns>
    public static long CountParameters(nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        return model.parameters().Sum(p => p.numel());
    }

    /// <summary>
    /// The fp32 (or bf16) matrix-multiply rate libtorch reaches on this machine at the current thread count: the median
    /// over <paramref name="repetitions"/> products of two random <paramref name="size"/>×<paramref name="size"/>
    /// matrices, after <paramref name="warmupRepetitions"/> untimed ones.
    /// </summary>
    /// <param name="size">The matrices' side; 2048 is large enough for BLAS to reach its plateau.</param>
    /// <param name="warmupRepetitions">Untimed products first.</param>
    /// <param name="repetitions">Timed products.</param>
    /// <param name="precision">The matrices' number format: float32, or bfloat16 (the ceiling of bf16 inference).</param>
    /// <returns>GFLOP/s (10⁹ FLOP per second, 2·n³ FLOPs per product).</returns>
    public static double MeasureMatmulGflops(int size = 2048, int warmupRepetitions = 2, int repetitions = 10, InferencePrecision precision = InferencePrecision.Float32)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(warmupRepetitions);
        ArgumentOutOfRangeException.ThrowIfLessThan(repetitions, 1);
        TorchRuntime.EnsureInitialized();

        using var scope = NewDisposeScope();
        using var generator = new Generator(0);
        var dtype = precision == InferencePrecision.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        var a = randn([size, size], ScalarType.Float32, generator: generator).to(dtype);
        var b = randn([size, size], ScalarType.Float32, generator: generator).to(dtype);
        var seconds = new List<double>(repetitions);
        for (var r = 0; r < warmupRepetitions + repetitions; r++)
        {
            var clock = Stopwatch.StartNew();
            using (NewDisposeScope())
            {
                a.mm(b);
            }

            if (r >= warmupRepetitions)
            {
                seconds.Add(clock.Elapsed.TotalSeconds);
            }
        }

        return 2.0 * size * size * size / Median(seconds) / 1e9;
    }

    /// <summary>
    /// Times inference as a deployed classifier runs it: evaluation mode, no gradients, one dispose scope per batch,
    /// on random token ids with every position real (no padding). In bfloat16 the steps run on a bfloat16 copy of the
    /// model, made (untimed) as <see cref="HeadClassifier"/> makes it, and freed afterwards; the model is unchanged.
    /// </summary>
    /// <param name="model">The model (left in evaluation mode).</param>
    /// <param name="batchSize">Sequences per step.</param>
    /// <param name="sequenceLength">Tokens per sequence.</param>
    /// <param name="warmupSteps">Untimed steps first.</param>
    /// <param name="steps">Timed steps.</param>
    /// <param name="seed">Seed of the random tokens.</param>
    /// <param name="precision">The number format of the forward pass.</param>
    /// <returns>The step times.</returns>
    public static StepTimings MeasureInference(SequenceClassificationModel model, int batchSize, int sequenceLength, int warmupSteps, int steps, int seed = 0,
        InferencePrecision precision = InferencePrecision.Float32)
    {
        CheckStepArguments(model, batchSize, sequenceLength, warmupSteps, steps);
        using var inputs = NewDisposeScope();
        var (ids, mask, _) = RandomBatch(model.Config, batchSize, sequenceLength, seed);
        using var inference = new InferenceModel<SequenceClassificationModel>(model, TransformerModels.CreateForSequenceClassification) { Precision = precision };
        var scored = inference.ForScoring(precision);
        using var noGrad = no_grad();
        return TimeSteps(batchSize, warmupSteps, steps, () => scored.forward(ids, mask, null));
    }

    /// <summary>
    /// Times fine-tuning steps as <see cref="FineTuner"/> runs them: training mode (dropout on), forward pass,
    /// cross-entropy, backward pass, gradient clipping and an AdamW step with FineTuner's default hyper-parameters and
    /// parameter groups, one dispose scope per step, on random token ids and labels with every position real.
    /// The model's weights change; it is left in evaluation mode.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="batchSize">Sequences per step.</param>
    /// <param name="sequenceLength">Tokens per sequence.</param>
    /// <param name="warmupSteps">Untimed steps first (the first step also allocates AdamW's state).</param>
    /// <param name="steps">Timed steps.</param>
    /// <param name="seed">Seed of the random tokens and labels.</param>
    /// <param name="precision">Float32, or BFloat16 for FineTuner's mixed precision (bfloat16 forward and backward, float32 masters and AdamW state).</param>
    /// <returns>The step times.</returns>
    public static StepTimings MeasureTraining(SequenceClassificationModel model, int batchSize, int sequenceLength, int warmupSteps, int steps, int seed = 0,
        TrainingPrecision precision = TrainingPrecision.Float32) =>
        TrainSteps(model, batchSize, sequenceLength, warmupSteps, steps, seed, precision, laps: null);

    /// <summary>
    /// Where a fine-tuning step's time goes: the steps of <see cref="MeasureTraining"/> again, each cut into its phases
    /// (forward pass, loss, backward pass, the mixed-precision bookkeeping, gradient clipping, the AdamW step, freeing
    /// the step's tensors), and the operations of one transformer layer (its Linear matmuls, attention, softmax,
    /// LayerNorm, activation, dropout) timed forward and backward at the model's shapes, in the step's number format.
    /// libtorch runs on the CPU synchronously, so a wall clock between two calls times what lies between them.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="batchSize">Sequences per step.</param>
    /// <param name="sequenceLength">Tokens per sequence.</param>
    /// <param name="warmupSteps">Untimed steps first.</param>
    /// <param name="steps">Timed steps (and timed repetitions of each layer operation).</param>
    /// <param name="seed">Seed of the random tokens and labels.</param>
    /// <param name="precision">Float32, or BFloat16 for mixed precision, as in <see cref="MeasureTraining"/>.</param>
    /// <returns>The step times, the median time of each phase, and each layer operation's median time times the layers.</returns>
    public static TrainingProfile ProfileTraining(SequenceClassificationModel model, int batchSize, int sequenceLength, int warmupSteps, int steps, int seed = 0,
        TrainingPrecision precision = TrainingPrecision.Float32)
    {
        var laps = new PhaseClock();
        var timings = TrainSteps(model, batchSize, sequenceLength, warmupSteps, steps, seed, precision, laps);
        return new TrainingProfile(timings, laps.Medians(), ProfileLayerOperations(model.Config, batchSize, sequenceLength, warmupSteps, steps, precision));
    }

    private static StepTimings TrainSteps(SequenceClassificationModel model, int batchSize, int sequenceLength, int warmupSteps, int steps, int seed,
        TrainingPrecision precision, PhaseClock? laps)
    {
        CheckStepArguments(model, batchSize, sequenceLength, warmupSteps, steps);
        var options = new FineTuningOptions();
        using var inputs = NewDisposeScope();
        var (ids, mask, labels) = RandomBatch(model.Config, batchSize, sequenceLength, seed);
        NativeHeap.PrepareForTraining(model); // as FineTuner does
        using var mixed = precision == TrainingPrecision.BFloat16 ? new MixedPrecision(model) : null;
        using var optimizer = mixed is null
            ? FineTuner.CreateOptimizer(model, options.LearningRate, options.WeightDecay)
            : FineTuner.CreateOptimizer(mixed.Decay, mixed.NoDecay, options.LearningRate, options.WeightDecay);
        mixed?.ToBFloat16();
        model.train();
        try
        {
            return TimeSteps(batchSize, warmupSteps, steps, () =>
            {
                var logits = model.forward(ids, mask, null);
                laps?.Lap("forward pass");
                var loss = nn.functional.cross_entropy(logits.to(ScalarType.Float32), labels);
                laps?.Lap("loss (float32 cross-entropy)");
                loss.backward();
                laps?.Lap("backward pass");
                if (mixed is not null)
                {
                    mixed.CollectGradients();
                    laps?.Lap("bf16 gradients into the float32 masters");
                }

                nn.utils.clip_grad_norm_(mixed?.Parameters ?? model.parameters(), options.MaxGradNorm);
                laps?.Lap("gradient clipping");
                optimizer.step();
                optimizer.zero_grad();
                laps?.Lap("AdamW step and zero_grad");
                if (mixed is not null)
                {
                    mixed.Refresh();
                    laps?.Lap("masters rounded into the bf16 weights");
                }
            }, laps);
        }
        finally
        {
            mixed?.ToFloat32();
            model.eval();
        }
    }

    /// <summary>
    /// One transformer layer's operations, each timed forward and backward (gradients of ones flowing back) on random
    /// tensors of the layer's shapes in the training number format, median of <paramref name="steps"/>, times the
    /// number of layers: what the layers' share of a training step costs, operation by operation.
    /// </summary>
    private static IReadOnlyList<PhaseTiming> ProfileLayerOperations(TransformerConfig config, int batchSize, int sequenceLength, int warmupSteps, int steps,
        TrainingPrecision precision)
    {
        var dtype = precision == TrainingPrecision.BFloat16 ? ScalarType.BFloat16 : ScalarType.Float32;
        long b = batchSize, t = sequenceLength, h = config.HiddenSize, heads = config.NumHeads, d = config.HeadDim, i = config.IntermediateSize;
        var attentionWidth = heads * d;
        using var scope = NewDisposeScope();
        Tensor Leaf(params long[] shape) => randn(shape, dtype).mul_(0.02).requires_grad_();
        var hidden = Leaf(b, t, h);
        var inner = Leaf(b, t, i);
        var (query, key, value, scores) = (Leaf(b, heads, t, d), Leaf(b, heads, t, d), Leaf(b, heads, t, d), Leaf(b, heads, t, t));
        var (qkv, qkvBias, output, outputBias) = (Leaf(3 * attentionWidth, h), Leaf(3 * attentionWidth), Leaf(h, attentionWidth), Leaf(h));
        var (up, upBias, down, downBias) = (Leaf(i, h), Leaf(i), Leaf(h, i), Leaf(h));
        var attended = Leaf(b, t, attentionWidth);
        var (gamma, beta) = (ones(h, dtype).requires_grad_(), zeros(h, dtype).requires_grad_());
        var hiddenDropout = config.HiddenDropout;
        var operations = new (string Name, Func<Tensor[]> Forward)[]
        {
            ("matmuls of the Linear layers (Q, K, V, output, FFN up and down)", () =>
                [nn.functional.linear(hidden, qkv, qkvBias), nn.functional.linear(attended, output, outputBias),
                 nn.functional.linear(hidden, up, upBias), nn.functional.linear(inner, down, downBias)]),
            ("attention (scaled_dot_product_attention, dropout on)", () =>
                [nn.functional.scaled_dot_product_attention(query, key, value, null, config.AttentionDropout)]),
            ("softmax of the attention scores alone", () => [scores.softmax(-1)]),
            ("LayerNorm (2)", () =>
                [nn.functional.layer_norm(hidden, [h], gamma, beta, config.LayerNormEps), nn.functional.layer_norm(hidden, [h], gamma, beta, config.LayerNormEps)]),
            ("activation (GELU)", () => [nn.functional.gelu(inner)]),
            ("dropout on the hidden states (2)", () =>
                [nn.functional.dropout(hidden, hiddenDropout, training: hiddenDropout > 0), nn.functional.dropout(hidden, hiddenDropout, training: hiddenDropout > 0)]),
        };
        var result = new List<PhaseTiming>();
        foreach (var (name, forward) in operations)
        {
            var timings = TimeSteps(1, warmupSteps, steps, () =>
            {
                var outputs = forward();
                torch.autograd.backward(outputs, [.. outputs.Select(o => ones_like(o))]);
            });
            result.Add(new PhaseTiming(name, timings.MedianMilliseconds * config.NumLayers));
        }

        return result;
    }

    /// <summary>
    /// Times the tokenizer path a classifier uses (<see cref="TransformerTokenizer.EncodeBatch"/>: encode with special
    /// tokens, truncate, pad) over real texts: one untimed pass over up to 1,000 texts, then whole passes until at least
    /// <paramref name="minimumSeconds"/> have gone by. One thread, as the classifier tokenizes.
    /// </summary>
    /// <param name="tokenizer">The tokenizer.</param>
    /// <param name="texts">The texts.</param>
    /// <param name="batchSize">Texts per batch.</param>
    /// <param name="maxLength">Truncation length, special tokens included.</param>
    /// <param name="minimumSeconds">Keep making passes until this much time has gone by.</param>
    /// <returns>Texts, tokens (after truncation, special tokens included) and seconds.</returns>
    public static TokenizationTiming MeasureTokenization(TransformerTokenizer tokenizer, IReadOnlyList<string> texts, int batchSize, int maxLength, double minimumSeconds = 1.0)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentOutOfRangeException.ThrowIfLessThan(texts.Count, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);

        long Pass(int count)
        {
            long tokens = 0;
            var batch = new List<string>(batchSize);
            for (var start = 0; start < count; start += batchSize)
            {
                batch.Clear();
                for (var i = start; i < Math.Min(start + batchSize, count); i++)
                {
                    batch.Add(texts[i]);
                }

                var encoded = tokenizer.EncodeBatch(batch, null, maxLength);
                foreach (var length in encoded.Lengths)
                {
                    tokens += length;
                }
            }

            return tokens;
        }

        Pass(Math.Min(texts.Count, 1000));
        var clock = Stopwatch.StartNew();
        long tokensPerPass = 0;
        var passes = 0;
        do
        {
            tokensPerPass = Pass(texts.Count);
            passes++;
        }
        while (clock.Elapsed.TotalSeconds < minimumSeconds);

        return new TokenizationTiming(texts.Count, tokensPerPass, passes, clock.Elapsed.TotalSeconds);
    }

    private static StepTimings TimeSteps(int batchSize, int warmupSteps, int steps, Action step, PhaseClock? laps = null)
    {
        var milliseconds = new List<double>(steps);
        for (var s = 0; s < warmupSteps + steps; s++)
        {
            var clock = Stopwatch.StartNew();
            laps?.Start(recording: s >= warmupSteps);
            using (NewDisposeScope())
            {
                step();
            }

            laps?.Lap("freeing the step's tensors");

            if (s >= warmupSteps)
            {
                milliseconds.Add(clock.Elapsed.TotalMilliseconds);
            }
        }

        return new StepTimings(batchSize, milliseconds);
    }

    /// <summary>Random ids over the whole vocabulary (B, T), an all-ones mask (B, T) and random labels (B).</summary>
    private static (Tensor Ids, Tensor Mask, Tensor Labels) RandomBatch(TransformerConfig config, int batchSize, int sequenceLength, int seed)
    {
        using var generator = new Generator((ulong)seed);
        var ids = randint(config.VocabSize, [batchSize, sequenceLength], ScalarType.Int64, generator: generator);
        var mask = ones([batchSize, sequenceLength], ScalarType.Int64);
        var labels = randint(config.NumLabels, [batchSize], ScalarType.Int64, generator: generator);
        return (ids, mask, labels);
    }

    private static void CheckStepArguments(SequenceClassificationModel model, int batchSize, int sequenceLength, int warmupSteps, int steps)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        var limit = MaxSequenceLength(model.Config);
        if (sequenceLength < 1 || sequenceLength > limit)
        {
            throw new ArgumentOutOfRangeException(nameof(sequenceLength), sequenceLength,
                string.Create(CultureInfo.InvariantCulture, $"The sequence length {sequenceLength} is outside 1..{limit}, the positions a {model.Config.Family} model of this config has."));
        }
    }

    /// <summary>The longest sequence a config's position table takes (RoBERTa's positions start after the padding id).</summary>
    /// <param name="config">The config.</param>
    /// <returns>The maximum number of tokens.</returns>
    public static int MaxSequenceLength(TransformerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return config.Family == ModelFamily.Roberta ? config.MaxPositions - (config.PadTokenId ?? 1) - 1 : config.MaxPositions;
    }

    internal static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToArray();
        var middle = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
    }
}

/// <summary>Wall-clock times of the timed steps of a benchmark.</summary>
/// <param name="BatchSize">Sequences per step.</param>
/// <param name="StepMilliseconds">Each timed step's duration, in order.</param>
public sealed record StepTimings(int BatchSize, IReadOnlyList<double> StepMilliseconds)
{
    /// <summary>The median step time: robust to the odd step slowed by another process.</summary>
    public double MedianMilliseconds => ModelBenchmark.Median(StepMilliseconds);

    /// <summary>Throughput: batch size ÷ median step time.</summary>
    public double SequencesPerSecond => BatchSize * 1000.0 / MedianMilliseconds;
}

/// <summary>The median time of one part of a training step.</summary>
/// <param name="Phase">What was timed.</param>
/// <param name="MedianMilliseconds">Its median time per step, in milliseconds.</param>
public sealed record PhaseTiming(string Phase, double MedianMilliseconds);

/// <summary>What <see cref="ModelBenchmark.ProfileTraining"/> found.</summary>
/// <param name="Steps">The profiled steps' times (the phase clock's cost included, which is a few stopwatch reads).</param>
/// <param name="Phases">The step's phases in order, median milliseconds each.</param>
/// <param name="LayerOperations">Each operation of a transformer layer, forward and backward, times the layers: median milliseconds per step.</param>
public sealed record TrainingProfile(StepTimings Steps, IReadOnlyList<PhaseTiming> Phases, IReadOnlyList<PhaseTiming> LayerOperations);

/// <summary>Splits each step into consecutive laps by name and keeps the laps of the recorded steps.</summary>
internal sealed class PhaseClock
{
    private readonly Stopwatch _clock = new();
    private readonly List<(string Name, List<double> Milliseconds)> _phases = [];
    private bool _recording;

    public void Start(bool recording)
    {
        _recording = recording;
        _clock.Restart();
    }

    public void Lap(string phase)
    {
        if (_recording)
        {
            var index = _phases.FindIndex(p => p.Name == phase);
            if (index < 0)
            {
                _phases.Add((phase, []));
                index = _phases.Count - 1;
            }

            _phases[index].Milliseconds.Add(_clock.Elapsed.TotalMilliseconds);
        }

        _clock.Restart();
    }

    public IReadOnlyList<PhaseTiming> Medians() => [.. _phases.Select(p => new PhaseTiming(p.Name, ModelBenchmark.Median(p.Milliseconds)))];
}

/// <summary>What a tokenization measurement found.</summary>
/// <param name="Texts">Texts per pass.</param>
/// <param name="TokensPerPass">Tokens per pass, special tokens included, after truncation.</param>
/// <param name="Passes">Timed passes over all texts.</param>
/// <param name="Seconds">Time of the timed passes.</param>
public sealed record TokenizationTiming(int Texts, long TokensPerPass, int Passes, double Seconds)
{
    /// <summary>Tokens produced per second.</summary>
    public double TokensPerSecond => TokensPerPass * (double)Passes / Seconds;
}

/// <summary>The process's resident memory: native (libtorch) and managed together.</summary>
/// <param name="ResidentMegabytes">Resident set size now, in MiB (Linux <c>VmRSS</c>; the working set elsewhere).</param>
/// <param name="PeakResidentMegabytes">The largest resident set size so far, in MiB (Linux <c>VmHWM</c>; the peak working set elsewhere).</param>
public readonly record struct ProcessMemory(double ResidentMegabytes, double PeakResidentMegabytes)
{
    /// <summary>Reads the current and peak resident memory of this process.</summary>
    /// <returns>The reading.</returns>
    public static ProcessMemory Read()
    {
        const string status = "/proc/self/status";
        if (OperatingSystem.IsLinux() && File.Exists(status))
        {
            double? rss = null, peak = null;
            foreach (var line in File.ReadLines(status))
            {
                // "VmRSS:     123456 kB"
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    rss = Kilobytes(line);
                }
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    peak = Kilobytes(line);
                }
            }

            if (rss is not null && peak is not null)
            {
                return new ProcessMemory(rss.Value / 1024, peak.Value / 1024);
            }
        }

        using var process = Process.GetCurrentProcess();
        return new ProcessMemory(process.WorkingSet64 / 1048576.0, process.PeakWorkingSet64 / 1048576.0);
    }

    /// <summary>
    /// Starts a new peak: on Linux the kernel resets <c>VmHWM</c> to the current resident size (writing 5 to
    /// <c>/proc/self/clear_refs</c>), so a later <see cref="Read"/> gives the peak of what ran in between.
    /// </summary>
    /// <returns>False where the peak cannot be reset (not Linux, or the file is not writable): peaks then cover the whole process.</returns>
    public static bool TryResetPeak()
    {
        const string clearRefs = "/proc/self/clear_refs";
        if (!OperatingSystem.IsLinux() || !File.Exists(clearRefs))
        {
            return false;
        }

        try
        {
            File.WriteAllText(clearRefs, "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static double Kilobytes(string line) =>
        double.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
}
