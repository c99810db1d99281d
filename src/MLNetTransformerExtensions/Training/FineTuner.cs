using System.Diagnostics;
using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// Fine-tunes every weight of a <see cref="HeadClassifier"/> or a <see cref="PromptClassifier"/> as HuggingFace's
/// Trainer does: AdamW with decoupled weight decay (on matrices only, none on biases and LayerNorm weights), linear warm-up then linear
/// decay, gradient clipping and accumulation, length-grouped batches with dynamic padding, validation each epoch, and
/// early stopping that restores the best epoch. Both strategies share this loop; only their loss differs.
/// </summary>
public static class FineTuner
{
    /// <summary>Trains the classifier in place.</summary>
    /// <param name="classifier">The classifier to train (its labels size the head).</param>
    /// <param name="train">Training rows.</param>
    /// <param name="validation">Validation rows, or null.</param>
    /// <param name="options">Hyper-parameters.</param>
    /// <param name="progress">Receives progress after each step and each epoch, or null.</param>
    /// <param name="cancellationToken">Stops training within one batch.</param>
    /// <returns>The epoch whose weights the classifier ends with (the best one when validating with early stopping).</returns>
    /// <exception cref="OperationCanceledException">Training was cancelled.</exception>
    /// <exception cref="TrainingDivergedException">The loss, the gradient norm or a weight became NaN or infinite; the classifier's weights are then unusable.</exception>
    public static int Train(HeadClassifier classifier, LabeledTexts train, LabeledTexts? validation, FineTuningOptions options,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default) =>
        TrainLoop(classifier, train, validation, options, progress, cancellationToken);

    /// <summary>
    /// Trains a prompt classifier in place: first takes its few-shot demonstrations from <paramref name="train"/>
    /// (when <see cref="PromptOptions.Shots"/> is above 0: seeded by <see cref="FineTuningOptions.Seed"/>, balanced
    /// across classes), then fine-tunes with its prompt loss for <see cref="FineTuningOptions.Epochs"/> epochs (none
    /// for zero-shot or in-context use), and finally recomputes its contextual calibration when enabled.
    /// </summary>
    /// <param name="classifier">The classifier to train.</param>
    /// <param name="train">Training rows (also the pool of demonstrations).</param>
    /// <param name="validation">Validation rows, or null.</param>
    /// <param name="options">Hyper-parameters.</param>
    /// <param name="progress">Receives progress after each step and each epoch, or null.</param>
    /// <param name="cancellationToken">Stops training within one batch.</param>
    /// <returns>The epoch whose weights the classifier ends with (0 when no epoch ran).</returns>
    /// <exception cref="OperationCanceledException">Training was cancelled.</exception>
    /// <exception cref="TrainingDivergedException">The loss, the gradient norm or a weight became NaN or infinite; the classifier's weights are then unusable.</exception>
    public static int Train(PromptClassifier classifier, LabeledTexts train, LabeledTexts? validation, FineTuningOptions options,
        IProgress<TrainingProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        options.Validate();
        CheckLabels(train, classifier.Labels.Count, "training");
        if (classifier.Options.Shots > 0)
        {
            classifier.SetDemonstrations(PromptClassifier.SelectDemonstrations(train, classifier.Labels.Count, classifier.Options.Shots, options.Seed));
        }

        var epoch = TrainLoop(classifier, train, validation, options, progress, cancellationToken);
        classifier.Recalibrate();
        return epoch;
    }

    /// <summary>Trains any <see cref="ITrainableClassifier{TRow}"/> with this loop (SetFit's contrastive step trains on text pairs with it).</summary>
    internal static int TrainPairs<TRow>(ITrainableClassifier<TRow> classifier, LabeledTexts train, LabeledTexts? validation, FineTuningOptions options,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken) =>
        TrainLoop(classifier, train, validation, options, progress, cancellationToken);

    private static int TrainLoop<TRow>(ITrainableClassifier<TRow> classifier, LabeledTexts train, LabeledTexts? validation, FineTuningOptions options,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        // A span per fit (and per epoch below) for tracing tools; StartActivity returns null when nobody listens.
        using var fit = TransformerTelemetry.ActivitySource.StartActivity("FineTune");
        fit?.SetTag("epochs", options.Epochs);
        fit?.SetTag("rows", train.Count);
        try
        {
            return TrainSteps(classifier, train, validation, options, progress, cancellationToken);
        }
        finally
        {
            // The optimizer's state and the steps' tensors are freed by now; without this, their memory stays resident.
            NativeHeap.Trim();
        }
    }

    private static int TrainSteps<TRow>(ITrainableClassifier<TRow> classifier, LabeledTexts train, LabeledTexts? validation, FineTuningOptions options,
        IProgress<TrainingProgress>? progress, CancellationToken cancellationToken)
    {
        options.Validate();
        CheckLabels(train, classifier.ClassCount, "training");
        if (validation is not null)
        {
            CheckLabels(validation, classifier.ValidationClassCount, "validation");
        }

        if (options.Epochs == 0 || train.Count == 0)
        {
            classifier.Module.eval();
            return 0;
        }

        classifier.WeightsChanged();

        var model = classifier.Module;
        var tokenizing = TransformerTelemetry.Start(TransformerTelemetry.Tokenization);
        var encoded = Enumerable.Range(0, train.Count).Select(i => classifier.EncodeForTraining(train.Texts[i], train.SecondTexts?[i])).ToArray();
        var lengths = encoded.Select(classifier.TokenCount).ToArray();
        TransformerTelemetry.Stop(TransformerTelemetry.Tokenization, tokenizing);
        var random = new Random(options.Seed);
        var batchesPerEpoch = (train.Count + options.BatchSize - 1) / options.BatchSize;
        var stepsPerEpoch = (batchesPerEpoch + options.GradientAccumulationSteps - 1) / options.GradientAccumulationSteps;
        var totalSteps = stepsPerEpoch * options.Epochs;
        var warmupSteps = (int)Math.Ceiling(totalSteps * options.WarmupRatio);

        var precision = TrainingPrecisions.Resolve(options.Precision, probe: null, out var notice);
        manual_seed(options.Seed);
        NativeHeap.PrepareForTraining(model);
        using var mixed = precision == TrainingPrecision.BFloat16 ? new MixedPrecision(model) : null;
        using var optimizer = mixed is null
            ? CreateOptimizer(model, options.LearningRate, options.WeightDecay)
            : CreateOptimizer(mixed.Decay, mixed.NoDecay, options.LearningRate, options.WeightDecay);
        Dictionary<string, Tensor>? best = null;
        var bestEpoch = 0;
        var bestAccuracy = double.NegativeInfinity;
        var epochsWithoutImprovement = 0;
        var step = 0;
        var lastEpoch = 0;
        try
        {
            for (var epoch = 1; epoch <= options.Epochs; epoch++)
            {
                lastEpoch = epoch;
                using var epochSpan = TransformerTelemetry.ActivitySource.StartActivity("Epoch");
                epochSpan?.SetTag("epoch", epoch);
                mixed?.ToBFloat16();
                model.train();
                var batching = TransformerTelemetry.Start(TransformerTelemetry.Batching);
                var batches = LengthGroupedBatches(lengths, options.BatchSize, random);
                TransformerTelemetry.Stop(TransformerTelemetry.Batching, batching);
                var clock = Stopwatch.StartNew();
                double lossSum = 0;
                var seen = 0;
                ZeroGradients(optimizer);
                for (var b = 0; b < batches.Count; b++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    long backward;
                    using (var scope = NewDisposeScope())
                    {
                        var rows = batches[b];
                        var loss = classifier.Loss([.. rows.Select(i => encoded[i])], [.. rows.Select(i => (long)train.Labels[i])]);
                        var lossValue = loss.item<float>();
                        if (!float.IsFinite(lossValue))
                        {
                            throw new TrainingDivergedException("loss", lossValue, step + 1, totalSteps, epoch, options.LearningRate);
                        }

                        backward = TransformerTelemetry.Start(TransformerTelemetry.Backward);
                        (loss / options.GradientAccumulationSteps).backward();
                        lossSum += lossValue * rows.Length;
                        seen += rows.Length;
                    }

                    mixed?.CollectGradients();
                    TransformerTelemetry.Stop(TransformerTelemetry.Backward, backward);
                    var boundary = (b + 1) % options.GradientAccumulationSteps == 0 || b == batches.Count - 1;
                    if (!boundary)
                    {
                        continue;
                    }

                    var stepping = TransformerTelemetry.Start(TransformerTelemetry.OptimizerStep);
                    var rate = LearningRate(step, totalSteps, warmupSteps, options.LearningRate);
                    foreach (var group in optimizer.ParamGroups)
                    {
                        group.LearningRate = rate;
                    }

                    if (options.MaxGradNorm > 0)
                    {
                        // Clipping measures the norm anyway; a NaN or infinite one would poison every weight at this step.
                        var norm = nn.utils.clip_grad_norm_(mixed?.Parameters ?? model.parameters(), options.MaxGradNorm);
                        if (!double.IsFinite(norm))
                        {
                            throw new TrainingDivergedException("gradient norm", norm, step + 1, totalSteps, epoch, options.LearningRate);
                        }
                    }

                    optimizer.step();
                    ZeroGradients(optimizer);
                    mixed?.Refresh();
                    TransformerTelemetry.Stop(TransformerTelemetry.OptimizerStep, stepping);
                    step++;
                    progress?.Report(new TrainingProgress(epoch, options.Epochs, step, totalSteps, lossSum / seen, rate,
                        seen / clock.Elapsed.TotalSeconds, IsEpochEnd: false)
                    { Notice = step == 1 ? notice : null });
                }

                // Validation, and the snapshot of the best epoch, see the float32 masters.
                mixed?.ToFloat32();
                double? accuracy = null, logLoss = null;
                if (validation is not null && validation.Count > 0)
                {
                    classifier.BeforeValidation();
                    (accuracy, logLoss) = EvaluateCore(classifier.PredictProbabilities, validation, options.InferenceBatchSize, cancellationToken);
                }

                progress?.Report(new TrainingProgress(epoch, options.Epochs, step, totalSteps, lossSum / Math.Max(seen, 1),
                    LearningRate(Math.Max(step - 1, 0), totalSteps, warmupSteps, options.LearningRate),
                    seen / clock.Elapsed.TotalSeconds, IsEpochEnd: true, accuracy, logLoss));

                if (accuracy is null || options.EarlyStoppingPatience is null)
                {
                    bestEpoch = epoch;
                    continue;
                }

                if (accuracy > bestAccuracy)
                {
                    bestAccuracy = accuracy.Value;
                    bestEpoch = epoch;
                    epochsWithoutImprovement = 0;
                    DisposeAll(best);
                    best = Snapshot(model);
                }
                else if (++epochsWithoutImprovement >= options.EarlyStoppingPatience)
                {
                    break;
                }
            }

            mixed?.ToFloat32();
            if (best is not null)
            {
                using var _ = no_grad();
                foreach (var (name, target) in model.state_dict())
                {
                    target.copy_(best[name]);
                }
            }

            // The last step's update is checked by no later loss; without clipping no gradient norm checked it either.
            CheckWeightsFinite(model, step, totalSteps, lastEpoch, options.LearningRate);
        }
        finally
        {
            mixed?.ToFloat32();
            DisposeAll(best);
            model.eval();
            classifier.WeightsChanged();
        }

        return bestEpoch;
    }

    /// <summary>Accuracy and mean log-loss on labelled rows.</summary>
    /// <param name="classifier">The classifier.</param>
    /// <param name="data">Rows with labels.</param>
    /// <param name="batchSize">Rows per forward pass.</param>
    /// <param name="cancellationToken">Stops between batches.</param>
    /// <returns>Accuracy in [0, 1] and log-loss in nats.</returns>
    public static (double Accuracy, double LogLoss) Evaluate(HeadClassifier classifier, LabeledTexts data, int batchSize, CancellationToken cancellationToken = default) =>
        EvaluateCore(classifier.PredictProbabilities, data, batchSize, cancellationToken);

    /// <summary>Accuracy and mean log-loss of a prompt classifier on labelled rows.</summary>
    /// <param name="classifier">The classifier.</param>
    /// <param name="data">Rows with labels.</param>
    /// <param name="batchSize">Rows per forward pass.</param>
    /// <param name="cancellationToken">Stops between batches.</param>
    /// <returns>Accuracy in [0, 1] and log-loss in nats.</returns>
    public static (double Accuracy, double LogLoss) Evaluate(PromptClassifier classifier, LabeledTexts data, int batchSize, CancellationToken cancellationToken = default) =>
        EvaluateCore(classifier.PredictProbabilities, data, batchSize, cancellationToken);

    /// <summary>Accuracy and mean log-loss of a SetFit classifier on labelled rows (single texts).</summary>
    /// <param name="classifier">The classifier.</param>
    /// <param name="data">Rows with labels.</param>
    /// <param name="batchSize">Rows per forward pass.</param>
    /// <param name="cancellationToken">Stops between batches.</param>
    /// <returns>Accuracy in [0, 1] and log-loss in nats.</returns>
    internal static (double Accuracy, double LogLoss) Evaluate(SetFitClassifier classifier, LabeledTexts data, int batchSize, CancellationToken cancellationToken = default) =>
        EvaluateCore((texts, _, size) => classifier.PredictProbabilities(texts, size), data, batchSize, cancellationToken);

    private static (double Accuracy, double LogLoss) EvaluateCore(Func<IReadOnlyList<string>, IReadOnlyList<string>?, int, float[][]> predict,
        LabeledTexts data, int batchSize, CancellationToken cancellationToken)
    {
        var correct = 0;
        double logLoss = 0;
        for (var start = 0; start < data.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var count = Math.Min(batchSize, data.Count - start);
            var texts = Enumerable.Range(start, count).Select(i => data.Texts[i]).ToList();
            var pairs = data.SecondTexts is null ? null : Enumerable.Range(start, count).Select(i => data.SecondTexts[i]).ToList();
            var probabilities = predict(texts, pairs, batchSize);
            for (var r = 0; r < count; r++)
            {
                var label = data.Labels[start + r];
                var p = probabilities[r];
                var predicted = Array.IndexOf(p, p.Max());
                correct += predicted == label ? 1 : 0;
                logLoss -= Math.Log(Math.Max(p[label], 1e-15));
            }
        }

        return (data.Count == 0 ? 0 : (double)correct / data.Count, data.Count == 0 ? 0 : logLoss / data.Count);
    }

    /// <summary>Linear warm-up from 0 to the peak, then linear decay to 0 (HuggingFace's <c>get_linear_schedule_with_warmup</c>).</summary>
    internal static double LearningRate(int step, int totalSteps, int warmupSteps, double peak) =>
        step < warmupSteps ? peak * (step + 1) / warmupSteps
        : peak * Math.Max(0.0, (double)(totalSteps - step) / Math.Max(1, totalSteps - warmupSteps));

    /// <summary>
    /// HuggingFace's length-grouped sampling: shuffle, cut into mega-batches of 50 batches, sort each by length, cut
    /// into batches; then shuffle the batches. Rows of similar length share a batch, so padding stays small.
    /// </summary>
    internal static List<int[]> LengthGroupedBatches(IReadOnlyList<int> lengths, int batchSize, Random random)
    {
        var order = Enumerable.Range(0, lengths.Count).ToArray();
        random.Shuffle(order);
        var batches = new List<int[]>();
        var mega = batchSize * 50;
        for (var start = 0; start < order.Length; start += mega)
        {
            var group = order.Skip(start).Take(mega).OrderByDescending(i => lengths[i]).ToArray();
            for (var b = 0; b < group.Length; b += batchSize)
            {
                batches.Add(group.Skip(b).Take(batchSize).ToArray());
            }
        }

        var shuffled = batches.ToArray();
        random.Shuffle(shuffled);
        return [.. shuffled];
    }

    /// <summary>
    /// The trainable parameters split as AdamW's two groups, by tensor rank as nanoGPT and HuggingFace do: matrices
    /// (weights of linear layers and embeddings, <c>dim() &gt;= 2</c>) decay; vectors (biases, LayerNorm gains) do not,
    /// nor does anything HuggingFace names as never decayed (a bias or a LayerNorm). <see cref="CreateOptimizer(nn.Module, double, double)"/> keeps
    /// this order, so its state list lines up with these names.
    /// </summary>
    internal static (List<(string Name, Parameter Parameter)> Decay, List<(string Name, Parameter Parameter)> NoDecay) ParameterGroups(nn.Module model)
    {
        var decay = new List<(string, Parameter)>();
        var noDecay = new List<(string, Parameter)>();
        foreach (var (name, parameter) in model.named_parameters())
        {
            if (!parameter.requires_grad)
            {
                continue;
            }

            (parameter.dim() >= 2 && !NeverDecayed(name) ? decay : noDecay).Add((name, parameter));
        }

        return (decay, noDecay);
    }

    // HuggingFace's Trainer exempts biases and LayerNorm parameters by name; with the rank rule this only matters for a
    // norm or bias of more than one dimension, which none of our models has.
    private static bool NeverDecayed(string name) =>
        name.EndsWith(".bias", StringComparison.Ordinal) || name == "bias"
        || name.Contains("LayerNorm", StringComparison.Ordinal) || name.Contains("layer_norm", StringComparison.Ordinal);

    /// <summary>AdamW with two groups: decayed weights, and biases plus LayerNorm weights without decay.</summary>
    internal static AdamW CreateOptimizer(nn.Module model, double learningRate, double weightDecay)
    {
        var (decay, noDecay) = ParameterGroups(model);
        return CreateOptimizer(decay, noDecay, learningRate, weightDecay);
    }

    /// <summary>AdamW over the two groups <see cref="ParameterGroups"/> made (or their float32 masters, <see cref="MixedPrecision"/>).</summary>
    internal static AdamW CreateOptimizer(List<(string Name, Parameter Parameter)> decay, List<(string Name, Parameter Parameter)> noDecay,
        double learningRate, double weightDecay)
    {
        return optim.AdamW(
        [
            new AdamW.ParamGroup(decay.Select(p => p.Parameter).ToList(), learningRate, 0.9, 0.999, 1e-8, weightDecay, false, false),
            new AdamW.ParamGroup(noDecay.Select(p => p.Parameter).ToList(), learningRate, 0.9, 0.999, 1e-8, 0.0, false, false),
        ], learningRate);
    }

    /// <summary>Throws <see cref="TrainingDivergedException"/> when a weight holds a NaN or an infinity.</summary>
    internal static void CheckWeightsFinite(nn.Module model, int step, int totalSteps, int epoch, double learningRate)
    {
        using var _ = no_grad();
        foreach (var (name, parameter) in model.named_parameters())
        {
            using var scope = NewDisposeScope();
            if (!isfinite(parameter).all().item<bool>())
            {
                throw new TrainingDivergedException($"weight '{name}'", parameter.isnan().any().item<bool>() ? double.NaN : double.PositiveInfinity,
                    step, totalSteps, epoch, learningRate);
            }
        }
    }

    /// <summary>
    /// The optimizer's <c>zero_grad</c>, in a dispose scope: TorchSharp's zeroes each gradient with <c>zero_()</c>,
    /// which returns a new handle to the gradient that it never disposes (one per parameter per step, left to the
    /// finalizer). Disposing those handles releases only them; the gradients stay on their parameters.
    /// </summary>
    internal static void ZeroGradients(optim.Optimizer optimizer)
    {
        using var scope = NewDisposeScope();
        optimizer.zero_grad();
    }

    private static Dictionary<string, Tensor> Snapshot(nn.Module model)
    {
        // Under no_grad a clone carries no graph, so no detached handle is needed (it would be left undisposed).
        using var _ = no_grad();
        return model.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
    }

    private static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        foreach (var tensor in tensors?.Values ?? Enumerable.Empty<Tensor>())
        {
            tensor.Dispose();
        }
    }

    private static void CheckLabels(LabeledTexts data, int classes, string what)
    {
        if (data.Labels.Count != data.Texts.Count || (data.SecondTexts is not null && data.SecondTexts.Count != data.Texts.Count))
        {
            throw new ArgumentException($"The {what} rows have {data.Texts.Count} texts, {data.SecondTexts?.Count.ToString() ?? "no"} second texts and {data.Labels.Count} labels; they must be equal.");
        }

        for (var i = 0; i < data.Labels.Count; i++)
        {
            if (data.Labels[i] < 0 || data.Labels[i] >= classes)
            {
                throw new ArgumentException($"Row {i} of the {what} data has class index {data.Labels[i]}, outside the {classes} classes the model was built for.");
            }
        }
    }
}
