using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Trainers;
using MLNetTransformerExtensions.Diagnostics;
using MLNetTransformerExtensions.Sources;
using MLNetTransformerExtensions.Training;

namespace MLNetTransformerExtensions.MLNet;

/// <summary>
/// SetFit's two steps on the rows the estimator read: contrastive fine-tuning of the sentence encoder on seeded,
/// balanced pairs (<see cref="ContrastiveTuner"/>; skipped with 0 epochs), then ML.NET's L-BFGS maximum entropy on the
/// training rows' embeddings as the head.
/// </summary>
internal sealed class SetFitTrainer(SetFitOptions options) : ITextClassificationTrainer
{
    public ITextClassificationModel Train(LabeledTexts training, LabeledTexts? validation, IReadOnlyList<string> classNames, TextClassificationTrainingContext context)
    {
        if (training.SecondTexts is not null)
        {
            throw new InvalidOperationException("SetFit classifies single texts: its encoder makes one embedding per text. Leave SecondTextColumnName null, or concatenate the two columns first.");
        }

        var setup = TransformerTelemetry.Start(TransformerTelemetry.Setup);
        var folder = ModelLocator.Resolve(options.ModelPath, options.Hub, cancellationToken: context.CancellationToken);
        var encoder = SentenceEncoder.FromFolder(folder, options.Pooling, options.Normalize, options.MaximumLength);
        TransformerTelemetry.Stop(TransformerTelemetry.Setup, setup);
        try
        {
            (float[][] Weights, float[] Biases) Head()
            {
                var embeddings = encoder.EmbedIn(training.Texts, options.BatchSize, InferencePrecision.Float32);
                return FitHead(embeddings, training.Labels, classNames.Count, encoder.Dimension, context.Seed);
            }

            if (options.NumberOfEpochs > 0)
            {
                // Validation classifies with the whole model each epoch: the head, refitted on the encoder as it is then.
                var validating = validation is null ? null : new ContrastiveTuner.Validation(validation, classNames.Count, () =>
                {
                    var (w, b) = Head();
                    return e => SetFitClassifier.Probabilities(w, b, e);
                });
                var pairs = ContrastiveTuner.Train(encoder, training, options.NumberOfIterations, options.NumberOfPairs,
                    options.ToFineTuning() with { Seed = context.Seed }, context.Progress, context.CancellationToken, validating);
                context.Log($"Fine-tuned the encoder on {pairs} pairs ({options.NumberOfEpochs} epoch(s)).");
            }

            context.CancellationToken.ThrowIfCancellationRequested();
            var (weights, biases) = Head();
            var classifier = new SetFitClassifier(encoder, classNames, weights, biases);
            if (validation is not null && options.NumberOfEpochs == 0)
            {
                // No epochs report it: a linear probe's validation accuracy goes to the log.
                var accuracy = FineTuner.Evaluate(classifier, validation, options.BatchSize, context.CancellationToken).Accuracy;
                context.Log(FormattableString.Invariant($"Validation accuracy of the linear probe: {accuracy:P2} on {validation.Count} rows."));
            }

            encoder.InferencePrecision = options.InferencePrecision;
            return new SetFitClassificationModel(classifier);
        }
        catch
        {
            encoder.Dispose();
            throw;
        }
    }

    private sealed class HeadRow
    {
        public string Label { get; set; } = string.Empty;

        public float[] Features { get; set; } = [];
    }

    private sealed class ClassRow
    {
        public string Label { get; set; } = string.Empty;
    }

    /// <summary>Fits L-BFGS maximum entropy on the embeddings and reads its weights back as the head's matrix and biases.</summary>
    private (float[][] Weights, float[] Biases) FitHead(float[][] embeddings, IReadOnlyList<int> labels, int classes, int dimension, int seed)
    {
        var ml = new MLContext(seed);
        var schema = SchemaDefinition.Create(typeof(HeadRow));
        schema[nameof(HeadRow.Features)].ColumnType = new VectorDataViewType(NumberDataViewType.Single, dimension);
        var data = ml.Data.LoadFromEnumerable(embeddings.Select((e, i) => new HeadRow { Label = Text(labels[i]), Features = e }), schema);
        // Every class gets a key, in class-index order, seen in the rows or not, so the head has one row per class.
        var allClasses = ml.Data.LoadFromEnumerable(Enumerable.Range(0, classes).Select(k => new ClassRow { Label = Text(k) }));
        var pipeline = ml.Transforms.Conversion.MapValueToKey(nameof(HeadRow.Label), keyOrdinality: Microsoft.ML.Transforms.ValueToKeyMappingEstimator.KeyOrdinality.ByOccurrence, keyData: allClasses)
            .Append(ml.MulticlassClassification.Trainers.LbfgsMaximumEntropy(new LbfgsMaximumEntropyMulticlassTrainer.Options
            {
                LabelColumnName = nameof(HeadRow.Label),
                FeatureColumnName = nameof(HeadRow.Features),
                L1Regularization = options.HeadL1Regularization,
                L2Regularization = options.HeadL2Regularization,
            }));
        var head = pipeline.Fit(data).LastTransformer.Model;
        VBuffer<float>[] weights = [];
        head.GetWeights(ref weights, out var count);
        if (count != classes)
        {
            throw new InvalidOperationException($"The head has {count} classes; the label has {classes}.");
        }

        var rows = weights.Select(w =>
        {
            var dense = new float[dimension];
            w.CopyTo(dense);
            return dense;
        }).ToArray();
        return (rows, [.. head.GetBiases()]);
    }

    private static string Text(int classIndex) => classIndex.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
