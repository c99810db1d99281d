using MLNetTransformerExtensions.Runtime;

namespace MLNetTransformerExtensions.Training;

/// <summary>The number format training's forward and backward passes run in.</summary>
public enum TrainingPrecision
{
    /// <summary>float32 throughout.</summary>
    Float32,

    /// <summary>
    /// bfloat16 mixed precision: the forward and backward passes (matrix multiplications, attention) run on a bfloat16
    /// copy of the weights, while the optimizer keeps float32 master weights and float32 AdamW state, and the loss, its
    /// softmax, LayerNorm statistics and the gradient-clipping norm stay in float32. Saved weights are float32. Faster
    /// only on CPUs that multiply bfloat16 faster than float32 (AMX); elsewhere it still works, slower, and says so once.
    /// </summary>
    BFloat16,

    /// <summary>
    /// bfloat16 where this CPU multiplies it at least 1.2× faster than float32, measured once per process
    /// (<see cref="BFloat16Support.Current"/>); float32 elsewhere.
    /// </summary>
    Auto,
}

/// <summary>Turns a requested <see cref="TrainingPrecision"/> into the one a run uses.</summary>
internal static class TrainingPrecisions
{
    private static int s_slowerNoticeGiven;

    /// <summary>
    /// Float32 or BFloat16 for <paramref name="requested"/>. The probe runs only for <see cref="TrainingPrecision.Auto"/>
    /// and an explicit <see cref="TrainingPrecision.BFloat16"/> (to warn); float32 never measures anything.
    /// </summary>
    /// <param name="requested">The setting.</param>
    /// <param name="probe">What the CPU does with bfloat16 (tests inject one); null measures this CPU, once per process.</param>
    /// <param name="notice">Once per process, when bfloat16 was asked for on a CPU where it is slower: a sentence saying so.</param>
    /// <returns>The precision to train in, never <see cref="TrainingPrecision.Auto"/>.</returns>
    public static TrainingPrecision Resolve(TrainingPrecision requested, Func<BFloat16Support>? probe, out string? notice)
    {
        notice = null;
        switch (requested)
        {
            case TrainingPrecision.Float32:
                return TrainingPrecision.Float32;
            case TrainingPrecision.Auto:
                return (probe ?? (() => BFloat16Support.Current))().IsFaster ? TrainingPrecision.BFloat16 : TrainingPrecision.Float32;
            case TrainingPrecision.BFloat16:
                var support = (probe ?? (() => BFloat16Support.Current))();
                if (!support.IsFaster && Interlocked.Exchange(ref s_slowerNoticeGiven, 1) == 0)
                {
                    notice = $"Training in bfloat16 as asked, though it is slower than float32 on this CPU ({support}); float32 or Auto would train faster here.";
                }

                return TrainingPrecision.BFloat16;
            default:
                throw new ArgumentOutOfRangeException(nameof(requested), requested,
                    $"The training precision must be {nameof(TrainingPrecision.Float32)}, {nameof(TrainingPrecision.BFloat16)} or {nameof(TrainingPrecision.Auto)}.");
        }
    }

    /// <summary>Lets the next explicit bfloat16 request give its notice again (for tests).</summary>
    internal static void ResetNotice() => Interlocked.Exchange(ref s_slowerNoticeGiven, 0);
}
