using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using MLNetTransformerExtensions.MLNet;
using MLNetTransformerExtensions.MLNet.Internal;
using MLNetTransformerExtensions.Training;
using static MLNetTransformerExtensions.Tests.MLNet.TextClassificationTestData;

namespace MLNetTransformerExtensions.Tests.MLNet;

/// <summary>What a trainer receives from Fit: rows, class names, validation rows, seed, progress and cancellation.</summary>
[TestClass]
public sealed class TextClassificationTrainingTests
{
    [TestMethod]
    public void TheTrainerGetsClassIndicesInKeyOrderAndTheClassNames()
    {
        var ml = new MLContext(seed: 1);
        var trainer = new FakeNaiveBayesTrainer();
        var rows = TopicRows(9);
        MulticlassPipeline(ml, trainer).Fit(ml.Data.LoadFromEnumerable(rows));

        var (training, _, classNames, _) = trainer.Calls.Single();
        CollectionAssert.AreEqual(Topics, classNames.ToArray(), "MapValueToKey numbers classes in order of appearance");
        CollectionAssert.AreEqual(rows.Select(r => Array.IndexOf(Topics, r.Label)).ToList(), training.Labels.ToList());
        CollectionAssert.AreEqual(rows.Select(r => r.Text).ToList(), training.Texts.ToList());
        Assert.IsNull(training.SecondTexts);
    }

    [TestMethod]
    public void BinaryClassesAreFalseThenTrue()
    {
        var ml = new MLContext(seed: 1);
        var trainer = new FakeNaiveBayesTrainer();
        var rows = SentimentRows(10);
        BinaryEstimator(ml, trainer).Fit(ml.Data.LoadFromEnumerable(rows));

        var (training, _, classNames, _) = trainer.Calls.Single();
        CollectionAssert.AreEqual(new[] { "False", "True" }, classNames.ToArray());
        CollectionAssert.AreEqual(rows.Select(r => r.Label ? 1 : 0).ToList(), training.Labels.ToList());
    }

    [TestMethod]
    public void TheValidationSetReachesTheTrainerWithTheSameClasses()
    {
        var ml = new MLContext(seed: 1);
        var mapKey = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(TopicRows(30)));
        var validationRows = TopicRows(6, seed: 99);
        var trainer = new FakeNaiveBayesTrainer();
        var options = new TextClassificationOptions { ValidationSet = mapKey.Transform(ml.Data.LoadFromEnumerable(validationRows)) };
        new TextClassificationEstimator(ml, TextClassificationTask.Multiclass, options, trainer, FakeNaiveBayesClassifier.Kind)
            .Fit(mapKey.Transform(ml.Data.LoadFromEnumerable(TopicRows(30))));

        var validation = trainer.Calls.Single().Validation!;
        Assert.AreEqual(6, validation.Count);
        CollectionAssert.AreEqual(validationRows.Select(r => r.Text).ToList(), validation.Texts.ToList());
        CollectionAssert.AreEqual(validationRows.Select(r => Array.IndexOf(Topics, r.Label)).ToList(), validation.Labels.ToList());
    }

    [TestMethod]
    public void AValidationSetKeyedDifferentlyIsRejected()
    {
        var ml = new MLContext(seed: 1);
        var training = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(TopicRows(30)));
        // Keyed on its own, the validation set numbers the classes in another order.
        var reversed = TopicRows(30).AsEnumerable().Reverse().ToList();
        var validation = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(reversed)).Transform(ml.Data.LoadFromEnumerable(reversed));
        var options = new TextClassificationOptions { ValidationSet = validation };
        var estimator = new TextClassificationEstimator(ml, TextClassificationTask.Multiclass, options, new FakeNaiveBayesTrainer(), FakeNaiveBayesClassifier.Kind);

        var error = Assert.ThrowsExactly<InvalidOperationException>(() => estimator.Fit(training.Transform(ml.Data.LoadFromEnumerable(TopicRows(30)))));
        StringAssert.Contains(error.Message, "same fitted MapValueToKey");
    }

    [TestMethod]
    public void TheSeedFollowsTheMLContextSeed()
    {
        int SeedOf(int contextSeed)
        {
            var ml = new MLContext(seed: contextSeed);
            var trainer = new FakeNaiveBayesTrainer();
            BinaryEstimator(ml, trainer).Fit(ml.Data.LoadFromEnumerable(SentimentRows(10)));
            return trainer.Calls.Single().Context.Seed;
        }

        Assert.AreEqual(SeedOf(5), SeedOf(5));
        Assert.AreNotEqual(SeedOf(5), SeedOf(6));
    }

    [TestMethod]
    public void ProgressGoesToTheOptionsHandlerAndEpochEndsToTheMLNetLog()
    {
        var ml = new MLContext(seed: 1);
        var log = new List<string>();
        ml.Log += (_, e) =>
        {
            lock (log)
            {
                log.Add(e.Message);
            }
        };
        var reports = new List<TrainingProgress>();
        var trainer = new FakeNaiveBayesTrainer
        {
            During = context =>
            {
                context.Progress.Report(new TrainingProgress(1, 2, 4, 10, 0.7, 1e-5, 100, IsEpochEnd: false));
                context.Progress.Report(new TrainingProgress(1, 2, 5, 10, 0.6931, 2e-5, 100, IsEpochEnd: true, ValidationAccuracy: 0.75));
                context.Log("halfway");
            },
        };
        var options = new TextClassificationOptions { Progress = new SynchronousProgress(reports.Add) };
        BinaryEstimator(ml, trainer, options).Fit(ml.Data.LoadFromEnumerable(SentimentRows(10)));

        CollectionAssert.AreEqual(new[] { 4, 5 }, reports.Select(r => r.Step).ToArray());
        lock (log)
        {
            Assert.IsTrue(log.Any(m => m.Contains("epoch 1/2 done, step 5/10, loss 0.6931, validation accuracy 0.7500")), string.Join("\n", log));
            Assert.IsFalse(log.Any(m => m.Contains("step 4/10")), "steps inside an epoch stay out of the log");
            Assert.IsTrue(log.Any(m => m.Contains("halfway")));
            Assert.IsTrue(log.Any(m => m.Contains("Training a binary 'test-naive-bayes' classifier on 10 rows, 2 classes")));
        }
    }

    [TestMethod]
    public void TheOptionsTokenCancelsTraining()
    {
        var ml = new MLContext(seed: 1);
        using var cancellation = new CancellationTokenSource();
        var trainer = new FakeNaiveBayesTrainer
        {
            During = context =>
            {
                cancellation.Cancel();
                context.CancellationToken.ThrowIfCancellationRequested();
            },
        };
        var options = new TextClassificationOptions { CancellationToken = cancellation.Token };

        Assert.ThrowsExactly<OperationCanceledException>(() => BinaryEstimator(ml, trainer, options).Fit(ml.Data.LoadFromEnumerable(SentimentRows(10))));
    }

    [TestMethod]
    public void CancellingTheMLContextCancelsTrainingAtTheNextProgressReport()
    {
        // MLContext.CancelExecution is internal in ML.NET 5; AutoML calls it to stop a trial. The flag is checked on
        // every progress report, so the token has fired when the trainer next looks, with no timer to wait for.
        var ml = new MLContext(seed: 1);
        var trainer = new FakeNaiveBayesTrainer
        {
            During = context =>
            {
                Assert.IsFalse(context.CancellationToken.IsCancellationRequested);
                CancelExecution(ml);
                context.Progress.Report(new TrainingProgress(1, 3, 1, 9, 0.5, 1e-4, 10, IsEpochEnd: false));
                Assert.IsTrue(context.CancellationToken.IsCancellationRequested, "the report checked ML.NET's flag");
                context.CancellationToken.ThrowIfCancellationRequested();
            },
        };

        Assert.ThrowsExactly<OperationCanceledException>(() => BinaryEstimator(ml, trainer).Fit(ml.Data.LoadFromEnumerable(SentimentRows(10))));
    }

    [TestMethod]
    public void ATrainerThatNeverReportsIsCancelledByThePollingTimer()
    {
        var ml = new MLContext(seed: 1);
        var host = ((IHostEnvironment)ml).Register("polled");
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var cancellation = new HostCancellation(host, CancellationToken.None, time);

        time.Advance(TimeSpan.FromSeconds(1));
        Assert.IsFalse(cancellation.Token.IsCancellationRequested, "nothing was cancelled yet");
        CancelExecution(ml);
        Assert.IsFalse(cancellation.Token.IsCancellationRequested, "no poll has run since");
        time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.IsTrue(cancellation.Token.IsCancellationRequested, "one poll interval later the token fired");
    }

    private static void CancelExecution(MLContext ml) =>
        typeof(MLContext).GetMethod("CancelExecution", BindingFlags.Instance | BindingFlags.NonPublic)!.Invoke(ml, null);

    [TestMethod]
    public void ACatalogGivesTheEnvironmentForAnEstimator()
    {
        // What a catalog extension method does: get the environment, build the estimator.
        var ml = new MLContext(seed: 1);
        var env = ml.MulticlassClassification.Trainers.GetHostEnvironment();
        Assert.IsNotNull(env);
        Assert.IsNotNull(ml.BinaryClassification.GetHostEnvironment());

        var estimator = new TextClassificationEstimator(env, TextClassificationTask.Binary, new TextClassificationOptions(), new FakeNaiveBayesTrainer(), FakeNaiveBayesClassifier.Kind);
        Assert.AreEqual(2, estimator.Fit(ml.Data.LoadFromEnumerable(SentimentRows(10))).ClassNames.Count);
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    private sealed class SynchronousProgress(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
