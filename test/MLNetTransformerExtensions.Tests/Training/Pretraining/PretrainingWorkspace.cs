using System.Text;
using MLNetTransformerExtensions.Tests.Tokenization.Vocabulary;
using MLNetTransformerExtensions.Training.Pretraining;

namespace MLNetTransformerExtensions.Tests.Training.Pretraining;

/// <summary>A temporary folder with a small generated corpus (about 20 KB in two files) and options for tiny, fast runs.</summary>
internal sealed class PretrainingWorkspace : IDisposable
{
    /// <summary>Smaller than the tiny preset, so a step takes milliseconds.</summary>
    public static readonly ModelSize Micro = ModelSize.Tiny with { Name = "micro", Layers = 2, HiddenSize = 32, Heads = 2, IntermediateSize = 64, MaxPositions = 32, VocabularySize = 300 };

    public PretrainingWorkspace()
    {
        Folder = TestPaths.NewTempDirectory();
        Files = [Write("part-1.txt", TrainingCorpus.Paragraphs(0, 40)), Write("part-2.txt", TrainingCorpus.Paragraphs(40, 40))];
    }

    public string Folder { get; }

    public string[] Files { get; }

    public static PretrainingOptions Options(PretrainingKind kind) => new()
    {
        Kind = kind,
        Size = Micro,
        Steps = 20,
        BatchSize = 8,
        LearningRate = 3e-3,
        WarmupRatio = 0.1,
        HoldOutEvery = 10,
        ShuffleBuffer = 16,
        CheckpointEvery = 0,
        Seed = 7,
    };

    public string Write(string name, string text)
    {
        var path = Path.Combine(Folder, name);
        File.WriteAllText(path, text, new UTF8Encoding(false));
        return path;
    }

    public string Output(string name) => Path.Combine(Folder, name);

    public void Dispose()
    {
        if (Directory.Exists(Folder))
        {
            Directory.Delete(Folder, recursive: true);
        }
    }
}

/// <summary>Reports in place, in order (<see cref="Progress{T}"/> posts to the thread pool).</summary>
internal sealed class InPlaceProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
